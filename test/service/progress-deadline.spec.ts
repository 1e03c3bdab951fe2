import { instanceDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createSequelize } from '../../src/db/database.ts';
import { markPastProgressDeadline } from '../../src/domain/progress-deadline.ts';
import { createLogger } from '../../src/logger.ts';
import { freshNotices } from '../support/argocd-notices.ts';
import { insertChange, insertInstance, insertOrganization } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { startServiceWithWorkspace, type InProcessService } from '../support/in-process-service.ts';
import type { Caller } from '../support/scratch-service.ts';
import { specOnMain } from '../support/spec-on-main.ts';
import { git } from '../../src/gitops/local/git.ts';

const TOKEN = 'progress-deadline-argocd-token';

/**
 * Issue 20 §3: Argo CD has no sync timeout (argo-cd#6055); an instance whose workload never turns
 * healthy must say so. A one-second deadline, the reconciler every 200 ms, no Argo CD answering.
 */
describe('the progress deadline: an instance not ready in time says so, and may still turn ready', function () {
  useSpecDatabase();
  this.timeout(60_000);
  let app: InProcessService;
  let caller: Caller;
  let org: string;
  let db: Sequelize;

  before(async () => {
    ({ app, caller, org } = await startServiceWithWorkspace('deadline', {
      ARGOCD_WEBHOOK_TOKEN: TOKEN,
      GITOPS_MERGE_POLICY: 'direct',
      RECONCILE_INTERVAL_MS: '200',
      INSTANCE_PROGRESS_DEADLINE_SECONDS: '1',
    }));
    db = createSequelize({ url: app.databaseUrl, poolMax: 2, logger: createLogger('silent') });
  });
  after(async () => {
    await db?.close();
    await app?.close();
  });

  const get = async (path: string) => (await fetch(`${app.url}${path}`, { headers: caller.headers })).json() as Promise<Record<string, unknown>>;
  const ready = async (id: string) => ((await get(`/instances/${id}`)).conditions as { type: string; status: string; reason: string }[]).find((c) => c.type === 'Ready')!;
  async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    let last: T | undefined;
    for (let i = 0; i < 100; i += 1) {
      last = await read();
      if (done(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`${what}: last seen ${JSON.stringify(last)}`);
  }
  const metric = async () => {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    return Number(text.split('\n').find((l) => l.startsWith('instances_past_progress_deadline '))?.split(' ')[1]);
  };

  it('sets Ready=False ProgressDeadlineExceeded once, with an event and a gauge; Argo CD reporting it Healthy later makes it ready', async () => {
    const created = await fetch(`${app.url}/instances`, { method: 'POST', headers: { ...caller.headers, 'content-type': 'application/json' }, body: JSON.stringify({ org, offering: 'studio', name: 'never-healthy' }) });
    assert.equal(created.status, 202);
    const id = String(((await created.json()) as { id: string }).id);
    await until('syncing', () => get(`/instances/${id}`), (v) => v.state === 'syncing');
    assert.equal((await ready(id)).reason, 'AwaitingArgoCD');

    const late = await until('past the deadline', () => ready(id), (c) => c.reason === 'ProgressDeadlineExceeded');
    assert.equal(late.status, 'False');
    assert.equal((await get(`/instances/${id}`)).state, 'syncing', 'the state is unchanged: only the condition says it');
    await new Promise((resolve) => setTimeout(resolve, 600)); // a few more reconciler passes
    const events = ((await get(`/instances/${id}`)).events as { cause: string }[]).filter((e) => e.cause === 'progress.deadline-exceeded');
    assert.equal(events.length, 1, 'marked once per change, not on every pass');
    assert.ok((await until('the gauge', metric, (n) => n >= 1)) >= 1);

    const head = (await git(['rev-parse', 'main'], { gitDir: app.gitDir })).trim();
    const spec = await specOnMain(app.gitDir, head, `${instanceDir(org, 'never-healthy', 'bucketed')}`);
    for (const notice of freshNotices({ instanceId: id, orgSlug: org, instanceName: 'never-healthy', spec: spec! }, head)) {
      const response = await fetch(`${app.url}/webhooks/argocd`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(notice) });
      assert.equal(response.status, 200);
    }
    assert.deepEqual(await until('ready after all', () => ready(id), (c) => c.reason === 'Healthy').then((c) => [c.status, c.reason]), ['True', 'Healthy']);
    assert.equal(await until('the gauge back to 0', metric, (n) => n === 0), 0);
  });
});

describe("markPastProgressDeadline: the offering version's own deadline wins over the default", () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());

  it('marks an instance of a version with a 1 s deadline under a default of an hour, and not one merged just now', async () => {
    const org = await insertOrganization(sequelize);
    const slow = await insertInstance(sequelize, org, { offering: 'deadline-short', state: 'syncing', observedCommitSha: 'a'.repeat(40) });
    const fresh = await insertInstance(sequelize, org, { offering: 'deadline-default', state: 'syncing', observedCommitSha: 'b'.repeat(40) });
    await sequelize.query("UPDATE offering_versions v SET progress_deadline_seconds = 1 FROM offerings f WHERE f.id = v.offering_id AND f.slug = 'deadline-short'");
    for (const { instanceId } of [slow, fresh]) {
      const change = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: {} });
      await sequelize.query("UPDATE change_requests SET status = 'merged', updated_at = now() - interval '5 seconds' WHERE id = $id", { bind: { id: change } });
    }
    assert.deepEqual(await markPastProgressDeadline(sequelize, 3600), [slow.instanceId]);
    assert.deepEqual(await markPastProgressDeadline(sequelize, 3600), [], 'once per change');
    const [row] = await sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM instance_events WHERE instance_id = $id AND cause = 'progress.deadline-exceeded'", { type: QueryTypes.SELECT, bind: { id: slow.instanceId } });
    assert.equal(row!.n, 1);
  });
});
