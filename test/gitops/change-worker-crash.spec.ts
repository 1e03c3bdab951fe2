import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createTestSequelize, testDatabaseUrl, useSpecDatabase } from '../support/database.ts';
import { insertChange, insertInstance, insertOrganization } from '../support/change-fixtures.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';

const SCRIPT = path.resolve(import.meta.dirname, '../support/change-worker-process.ts');

describe('change worker crash (SIGKILL mid-change)', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  const children: ChildProcess[] = [];
  before(async () => {
    sequelize = createTestSequelize();
    gitops = await createLocalGitops(sequelize);
  });
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await gitops.cleanup();
    await sequelize.close();
  });

  const startWorker = () => {
    const child = spawn(process.execPath, [SCRIPT], {
      env: { ...process.env, TEST_DATABASE_URL: testDatabaseUrl(), GIT_DIR_UNDER_TEST: gitops.repository.gitDir, LEASE_MS: '1000', MAX_BATCH: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    return child;
  };
  const openCount = async (ids: string[]) =>
    Number((await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM change_requests WHERE id IN (:ids) AND status = 'open'`, { type: QueryTypes.SELECT, replacements: { ids } }))[0]!.n);
  const waitFor = async (predicate: () => Promise<boolean>, what: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  it('after a restart every accepted change is committed exactly once', async function () {
    this.timeout(120_000);
    const org = await insertOrganization(sequelize);
    const ids: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      ids.push(
        await insertChange(sequelize, {
          kind: 'instance.create',
          orgId: org.orgId,
          instanceId,
          payload: { org: org.orgSlug, project: 'default', instanceName, offering: 'studio', role: 'studio', version: '1.0.0', templatePath: 'templates/offerings/studio/1.0.0', parameters: {} },
        }),
      );
    }
    const first = startWorker();
    await waitFor(async () => (await openCount(ids)) >= 3, 'the first worker to publish some changes');
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const published = await openCount(ids);
    assert.ok(published < ids.length, 'the worker died with changes left to do');

    const second = startWorker();
    await waitFor(async () => (await openCount(ids)) === ids.length, 'the restarted worker to publish everything');
    second.kill('SIGKILL');

    // Every change: one commit reachable from any ref, one branch, one pull request.
    const trailers = (await gitops.git('log', '--all', '--format=%(trailers:key=Change-Id,valueonly)')).split('\n').filter(Boolean);
    for (const id of ids) assert.equal(trailers.filter((t) => t === id).length, 1, `change ${id} committed once`);
    const rows = await sequelize.query<{ branch: string; pull_request_number: number; commit_sha: string }>(
      'SELECT branch, pull_request_number, commit_sha FROM change_requests WHERE id IN (:ids)',
      { type: QueryTypes.SELECT, replacements: { ids } },
    );
    assert.equal(new Set(rows.map((r) => r.pull_request_number)).size, ids.length);
    const [{ n }] = (await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM local_pull_requests WHERE repository = :repo', {
      type: QueryTypes.SELECT,
      replacements: { repo: gitops.repository.gitDir },
    })) as [{ n: string }];
    assert.equal(Number(n), ids.length, 'no duplicate pull requests');
    for (const row of rows) {
      assert.equal(await gitops.git('rev-parse', row.branch), row.commit_sha);
      assert.equal(await gitops.git('rev-list', '--count', `main..${row.branch}`), '1');
    }
  });
});
