import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { webhookRoutes } from '../../src/api/routes/webhook-routes.ts';
import { ArgocdTokenVerifier } from '../../src/webhooks/argocd-token.ts';
import { createSyncSimulator } from '../../src/dev/sync-simulator.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { instanceApplicationName, tenantNamespace, tenantProject, instanceDir, tenantBaseDir } from '../../src/gitops/tenant-paths.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { listen, type Listening } from '../support/http.ts';
import { insertMergedChange, instanceEvents, instanceState } from '../support/webhook-fixtures.ts';

const TOKEN = 'simulator-test-token-0123456789';

function applicationYaml(name: string, instanceId: string, project = tenantProject('acme')): string {
  return `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: ${name}
  namespace: argocd
  labels:
    app.kubernetes.io/managed-by: control-plane
    gsv.io/instance-id: ${instanceId}
  annotations:
    gsv.io/spec: '{"offering":"fixture-offering","parameters":{},"version":"1.0.0"}'
spec:
  project: ${project}
  destination:
    server: https://kubernetes.default.svc
    namespace: ${tenantNamespace('acme', 'studio')}
  source:
    repoURL: https://langflow-ai.github.io/langflow-helm-charts
    chart: langflow-ide
    targetRevision: 0.1.1
`;
}

describe('development sync simulator', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let dir: string;
  let repository: LocalRepository;
  let server: Listening;
  let simulator: ReturnType<typeof createSyncSimulator>;

  before(async () => {
    sequelize = createTestSequelize();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-simulator-'));
    repository = new LocalRepository({ gitDir: path.join(dir, 'gsv-gitops.git'), baseBranch: 'main' });
    await repository.ensureInitialized([{ path: 'README.md', content: 'gsv-gitops\n' }]);
    const routes = webhookRoutes({ sequelize, repository, baseBranch: 'main', github: undefined, argocd: new ArgocdTokenVerifier(TOKEN) });
    server = await listen(createApp({ logger: createLogger('silent'), metrics: createMetrics({ collectDefaults: false }), bodyLimitBytes: 1_000_000, routes, authenticate: async () => {} }));
    simulator = createSyncSimulator({ sequelize, repository, serviceUrl: () => server.url, argocdToken: TOKEN, logger: createLogger('silent'), random: () => 0.5 });
  });
  after(async () => {
    await server.close();
    await sequelize.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Commits `files` on main (as a merge would) and returns the new head. */
  async function commitOnMain(changes: Array<{ path: string; content: string } | { path: string; delete: true }>): Promise<string> {
    const parent = (await repository.getBranch('main'))!;
    const commit = await repository.createCommit({ parent, changes, message: 'merge' });
    await repository.updateBranch('main', commit, { expected: parent });
    return commit;
  }

  async function orgAndName(instanceId: string) {
    const [row] = await sequelize.query<{ org: string; name: string }>(
      'SELECT o.slug AS org, i.name FROM instances i JOIN organizations o ON o.id = i.organization_id WHERE i.id = $id',
      { type: QueryTypes.SELECT, bind: { id: instanceId } },
    );
    return row!;
  }

  /** The tenant's base (AppProject, namespaces) on main, as its workspace change puts it there. */
  const tenantBase = (org: string) => ({ path: `${tenantBaseDir(org, 'bucketed')}/kustomization.yaml`, content: 'resources: []\n' });

  /** An instance whose create merged: its directory (and, unless `withoutBase`, its tenant's base) on main. */
  async function mergedInstance(options: { withoutBase?: boolean } = {}) {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: (await repository.getBranch('main'))! });
    const { org, name } = await orgAndName(change.instanceId);
    const merge = await commitOnMain([
      ...(options.withoutBase ? [] : [tenantBase(org)]),
      { path: `${instanceDir(org, name, 'bucketed')}/application.yaml`, content: applicationYaml(instanceApplicationName(org, name), change.instanceId) },
      { path: `${instanceDir(org, name, 'bucketed')}/kustomization.yaml`, content: 'resources:\n  - application.yaml\n' },
    ]);
    await sequelize.query('UPDATE change_requests SET merge_commit_sha = $sha WHERE id = $id', { bind: { id: change.changeId, sha: merge } });
    return { change, org, name };
  }

  it('after a merge, posts the parent\'s sync, then the instance Application Progressing and a fresh Healthy: the instance becomes ready', async () => {
    const { change } = await mergedInstance();

    assert.ok((await simulator.runOnce()) >= 1);
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
    const events = await instanceEvents(sequelize, change.instanceId);
    assert.deepEqual(events.map((e) => [e.to_state, e.cause, e.change_id]), [['ready', 'argocd.simulator.deployed', change.changeId]]);
    await simulator.runOnce();
    assert.equal((await instanceEvents(sequelize, change.instanceId)).length, 1, 'a merge is played once');
  });

  it('plays nothing before the tenant\'s base is on main, and the instance once it is', async () => {
    const { change, org } = await mergedInstance({ withoutBase: true });
    assert.equal(await simulator.runOnce(), 0);
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing', 'the AppProject its Application names does not exist yet');
    await commitOnMain([tenantBase(org)]);
    assert.equal(await simulator.runOnce(), 1);
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
  });

  it('reaches ready by the production rule when notices come twice and late', async () => {
    const chaotic = createSyncSimulator({ sequelize, repository, serviceUrl: () => server.url, argocdToken: TOKEN, logger: createLogger('silent'), random: () => 0 });
    const { change } = await mergedInstance();
    await chaotic.runOnce();
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready', 'the late Progressing does not replace the fresher Healthy');
  });

  it('reports a failed sync when a rendered manifest is invalid', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: (await repository.getBranch('main'))! });
    const { org, name } = await orgAndName(change.instanceId);
    const merge = await commitOnMain([
      tenantBase(org),
      { path: `${instanceDir(org, name, 'bucketed')}/application.yaml`, content: applicationYaml(instanceApplicationName(org, name), change.instanceId).replace(`  project: ${tenantProject('acme')}\n`, '') },
    ]);
    await sequelize.query('UPDATE change_requests SET merge_commit_sha = $sha WHERE id = $id', { bind: { id: change.changeId, sha: merge } });
    await simulator.runOnce();
    assert.equal(await instanceState(sequelize, change.instanceId), 'failed');
    const [row] = await sequelize.query<{ last_error: string }>('SELECT last_error FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: change.instanceId } });
    assert.match(row!.last_error, /application\.yaml/);
  });

  it('reports the Application deleted once a merged delete removed the instance directory', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: (await repository.getBranch('main'))!, state: 'deleting', desired: 'absent', kind: 'instance.delete' });
    await simulator.runOnce();
    assert.equal(await instanceState(sequelize, change.instanceId), 'deleted');
  });
});
