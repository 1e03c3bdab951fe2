import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { renderInstanceRemoval, renderInstanceUpdate } from '../../src/gitops/render/change-renderer.ts';
import type { InstanceUpdate } from '../../src/gitops/render/change-payloads.ts';
import type { TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import type { GitopsRepository } from '../../src/gitops/repository.ts';
import { instanceDir } from '../../src/gitops/tenant-paths.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';
import { mergeChange } from '../../src/domain/changes/change-merge.ts';
import { createLogger } from '../../src/logger.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { loadFixtureCatalog } from '../support/fixture-catalog.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { connectGithubDriver } from '../support/github-driver.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';
import { kustomizeAll } from '../support/kustomize.ts';

const INSTANCE_ID = '5f0c8a51-8f57-4a57-9c39-2a7f9d7f3b10';
const V1 = 'templates/offerings/upgrade-demo/1.0.0';
/** What upgrade-demo renders into an instance directory, per version. */
const V2_FILES = ['application.yaml', 'features.yaml', 'kustomization.yaml', 'settings.yaml'];

const under = (dir: string, names: string[]) => names.map((name) => `${dir}/${name}`);

/** An upgrade-demo payload (its role is studio) at `version`. */
function demoPayload(org: string, instanceName: string, version: string, previousTemplatePath?: string): InstanceUpdate {
  const payload = { ...instanceWritePayload(org, instanceName, { offering: 'upgrade-demo', version }), role: 'studio' };
  return previousTemplatePath === undefined ? payload : { ...payload, previousTemplatePath };
}

describe('instance upgrade: files of the old version that the new one lacks are removed', () => {
  let catalog: TemplateCatalog;
  before(async () => {
    catalog = await loadFixtureCatalog();
  });

  describe('rendering (pure)', () => {
    const dir = instanceDir('acme', 'demo', 'bucketed');
    const paths = (files: { path: string }[]) => files.map((f) => f.path);

    it('deletes, file by file and in path order, what the previous version had and the new one lacks', () => {
      const files = renderInstanceUpdate(catalog, demoPayload('acme', 'demo', '2.0.0', V1), INSTANCE_ID, 'bucketed');
      assert.deepEqual(
        files.filter((f) => 'delete' in f),
        [{ path: `${dir}/legacy-config.yaml`, delete: true }],
      );
      assert.deepEqual(paths(files.filter((f) => 'content' in f)), under(dir, V2_FILES));
      assert.deepEqual(paths(files), [...paths(files)].sort());
    });

    it('deletes nothing when the version stays (a parameter change)', () => {
      const files = renderInstanceUpdate(catalog, demoPayload('acme', 'demo', '1.0.0', V1), INSTANCE_ID, 'bucketed');
      assert.ok(files.every((f) => 'content' in f));
    });

    for (const [label, previous] of [
      ['no previous version (a payload queued before it was named)', undefined],
      ['a previous version no longer in the catalog', 'templates/offerings/upgrade-demo/0.9.0'],
    ] as const) {
      it(`replaces the whole directory with ${label}: the directory delete first, then the writes`, () => {
        const files = renderInstanceUpdate(catalog, demoPayload('acme', 'demo', '2.0.0', previous), INSTANCE_ID, 'bucketed');
        assert.deepEqual(files[0], { path: dir, delete: true, directory: true });
        assert.deepEqual(paths(files.slice(1)), under(dir, V2_FILES));
      });
    }

    it('still removes the whole directory on instance.delete', () => {
      assert.deepEqual(renderInstanceRemoval({ org: 'acme', project: 'default', instanceName: 'demo', offering: 'upgrade-demo', role: 'studio' }, 'bucketed'), [{ path: dir, delete: true, directory: true }]);
    });
  });

  describe('through the change worker', () => {
    useSpecDatabase();
    let sequelize: Sequelize;
    before(() => {
      sequelize = createTestSequelize();
    });
    after(() => sequelize.close());

    const changeRow = async (id: string) =>
      (await sequelize.query<{ status: string; branch: string; commit_sha: string; last_error: string | null }>('SELECT * FROM change_requests WHERE id = :id', {
        type: QueryTypes.SELECT,
        replacements: { id },
      }))[0]!;

    /**
     * Creates an upgrade-demo instance at 1.0.0 and merges it, then queues its update to 2.0.0
     * (naming 1.0.0 as the previous version, or not); returns what the caller needs to publish
     * and inspect the update.
     */
    async function createdAtV1(repository: GitopsRepository, runWorker: () => Promise<unknown>) {
      const org = await insertOrganization(sequelize);
      const { instanceId, instanceName } = await insertInstance(sequelize, org, { offering: 'upgrade-demo' });
      const create = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: demoPayload(org.orgSlug, instanceName, '1.0.0') });
      await runWorker();
      assert.equal((await changeRow(create)).status, 'open');
      await mergeChange({ sequelize, repository }, create, 'admin');
      await sequelize.query(`UPDATE instances SET state = 'updating' WHERE id = :id`, { replacements: { id: instanceId } });
      return {
        dir: instanceDir(org.orgSlug, instanceName, 'bucketed'),
        queueUpdate: (previous: string | undefined) =>
          insertChange(sequelize, { kind: 'instance.update', orgId: org.orgId, instanceId, payload: demoPayload(org.orgSlug, instanceName, '2.0.0', previous) }),
        queueDelete: () =>
          insertChange(sequelize, { kind: 'instance.delete', orgId: org.orgId, instanceId, payload: { org: org.orgSlug, project: 'default', instanceName, offering: 'upgrade-demo', role: 'studio' } }),
      };
    }

    describe('local driver (real git)', () => {
      let gitops: LocalGitops;
      beforeEach(async () => {
        gitops = await createLocalGitops(sequelize);
      });
      afterEach(() => gitops.cleanup());
      const runWorker = () => gitops.worker({ catalog }).runOnce();
      const filesIn = async (ref: string, dir: string) => (await gitops.git('ls-tree', '-r', '--name-only', ref, `${dir}/`)).split('\n').filter(Boolean);

      for (const [label, previous] of [
        ['naming the previous version (per-file deletes)', V1],
        ['without the previous version (the directory is replaced)', undefined],
      ] as const) {
        it(`upgrade 1.0.0 → 2.0.0 ${label}: the commit removes the old file, adds and modifies the rest, nothing else; after the merge the directory holds exactly 2.0.0's files and builds`, async () => {
          const instance = await createdAtV1(gitops.repository, runWorker);
          const update = await instance.queueUpdate(previous);
          await runWorker();
          const row = await changeRow(update);
          assert.equal(row.status, 'open', row.last_error ?? '');
          const diff = (await gitops.git('diff-tree', '-r', '--no-commit-id', '--name-status', row.commit_sha)).split('\n').sort();
          assert.deepEqual(diff, [
            `A\t${instance.dir}/features.yaml`,
            `D\t${instance.dir}/legacy-config.yaml`,
            `M\t${instance.dir}/application.yaml`,
            `M\t${instance.dir}/kustomization.yaml`,
            `M\t${instance.dir}/settings.yaml`,
          ]);

          await mergeChange({ sequelize, repository: gitops.repository }, update, 'admin');
          const files = await filesIn('main', instance.dir);
          assert.deepEqual(files, under(instance.dir, V2_FILES));
          const contents = await Promise.all(files.map(async (path) => ({ path, content: `${await gitops.git('show', `main:${path}`)}\n` })));
          assert.equal(await kustomizeAll(contents), 1);
        });
      }

      it('a delete after the upgrade still removes the whole directory', async () => {
        const instance = await createdAtV1(gitops.repository, runWorker);
        const update = await instance.queueUpdate(V1);
        await runWorker();
        await mergeChange({ sequelize, repository: gitops.repository }, update, 'admin');
        const remove = await instance.queueDelete();
        await runWorker();
        const row = await changeRow(remove);
        const diff = (await gitops.git('diff-tree', '-r', '--no-commit-id', '--name-status', row.commit_sha)).split('\n').sort();
        assert.deepEqual(diff, V2_FILES.map((name) => `D\t${instance.dir}/${name}`));
        await mergeChange({ sequelize, repository: gitops.repository }, remove, 'admin');
        assert.deepEqual(await filesIn('main', instance.dir), []);
      });
    });

    describe('github driver (GitHub double)', () => {
      let double: GithubDouble;
      let repository: GithubRepository;
      beforeEach(async () => {
        double = await startGithubDouble();
        repository = await connectGithubDriver(double);
      });
      afterEach(async () => {
        assert.deepEqual(double.violations, [], 'every request matched the GitHub OpenAPI description and relied on documented behaviour only');
        await double.close();
      });
      const runWorker = () =>
        createChangeWorker({ sequelize, repository, catalog, logger: createLogger('silent'), windowMs: 0, maxBatch: 100, leaseMs: 60_000, pollMs: 20, maxAttempts: 5 }).runOnce();
      const filesIn = (ref: string, dir: string) => [...double.files(ref).keys()].filter((path) => path.startsWith(`${dir}/`)).sort();
      const routes = () => double.calls.map((c) => `${c.route} ${c.status}`);
      /** Runs the worker on a queued change, counting only its calls; the change must open. */
      const publish = async (id: string) => {
        double.resetCalls();
        await runWorker();
        const row = await changeRow(id);
        assert.equal(row.status, 'open', row.last_error ?? '');
        return row;
      };

      it('an upgrade naming the previous version costs the same 5 REST calls as a create; the branch holds exactly 2.0.0\'s files', async () => {
        const instance = await createdAtV1(repository, runWorker);
        const update = await instance.queueUpdate(V1);
        const row = await publish(update);
        assert.ok(double.calls.length <= 5, routes().join(', '));
        assert.deepEqual(filesIn(row.branch, instance.dir), under(instance.dir, V2_FILES));
        assert.match(double.pulls.at(-1)!.body, /legacy-config\.yaml` \| removed \|/);

        await mergeChange({ sequelize, repository }, update, 'admin');
        assert.deepEqual(filesIn('main', instance.dir), under(instance.dir, V2_FILES));
      });

      it('without the previous version, lists the directory (one GraphQL query) and deletes its old files one by one; never deletes a directory and writes below it in one call', async () => {
        const instance = await createdAtV1(repository, runWorker);
        const row = await publish(await instance.queueUpdate(undefined));
        assert.deepEqual(
          routes().filter((r) => r.includes('/contents/') || r.includes('/graphql')),
          ['POST /graphql 200'],
        );
        assert.equal(double.calls.length, 6, routes().join(', '));
        assert.deepEqual(filesIn(row.branch, instance.dir), under(instance.dir, V2_FILES));
      });

      it('a per-file delete of a path the base no longer has (a retry on a newer base) does not fail the change', async () => {
        const instance = await createdAtV1(repository, runWorker);
        // Someone (or an earlier attempt) already removed the old file on main.
        const main = double.branch('main')!;
        const without = await repository.createCommit({ parent: main, changes: [{ path: `${instance.dir}/legacy-config.yaml`, delete: true }], message: 'remove by hand' });
        await repository.updateBranch('main', without, { expected: main });
        const update = await instance.queueUpdate(V1);
        const row = await publish(update);
        assert.deepEqual(
          routes().filter((r) => r.includes('/git/trees') || r.includes('/contents/')),
          ['POST /repos/{owner}/{repo}/git/trees 422', 'GET /repos/{owner}/{repo}/contents/{path} 404', 'POST /repos/{owner}/{repo}/git/trees 201'],
        );
        assert.deepEqual(filesIn(row.branch, instance.dir), under(instance.dir, V2_FILES));
      });

      it('a delete after the upgrade still removes the whole directory, file by file (GitHub deletes no directory), in 5 REST calls and one GraphQL query', async () => {
        const instance = await createdAtV1(repository, runWorker);
        const update = await instance.queueUpdate(V1);
        await runWorker();
        await mergeChange({ sequelize, repository }, update, 'admin');
        assert.deepEqual(filesIn('main', instance.dir), under(instance.dir, V2_FILES));
        const row = await publish(await instance.queueDelete());
        assert.ok(double.calls.filter((c) => c.route !== 'POST /graphql').length <= 5, routes().join(', '));
        assert.deepEqual(routes().filter((r) => r.includes('/graphql')), ['POST /graphql 200'], 'the directory listed once');
        assert.deepEqual(filesIn(row.branch, instance.dir), []);
      });
    });
  });
});
