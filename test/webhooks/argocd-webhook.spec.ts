import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { webhookRoutes } from '../../src/api/routes/webhook-routes.ts';
import { ArgocdTokenVerifier } from '../../src/webhooks/argocd-token.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import type { ArgocdNotification } from '../../src/webhooks/argocd-notification.ts';
import { instanceApplicationName } from '../../src/gitops/tenant-paths.ts';
import { childNotice, parentNotice } from '../support/argocd-notices.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { listen, type Listening } from '../support/http.ts';
import { createScratchRepository } from '../support/local-commits.ts';
import { changeRow, insertMergedChange, instanceEvents, instanceState, type OpenChange } from '../support/webhook-fixtures.ts';

const require = createRequire(import.meta.url);
const RECORDED = require('../fixtures/argocd/sync-succeeded-healthy.json') as ArgocdNotification;
const TOKEN = 'argocd-bearer-secret';

describe('POST /webhooks/argocd', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let server: Listening;
  let scratch: Awaited<ReturnType<typeof createScratchRepository>>;
  let older: string;
  let merge: string;
  let newer: string;

  before(async () => {
    sequelize = createTestSequelize();
    scratch = await createScratchRepository();
    older = await scratch.commit('older');
    merge = await scratch.commit('the merge');
    newer = await scratch.commit('newer');
    const routes = webhookRoutes({ sequelize, repository: scratch.repository, baseBranch: 'main', github: undefined, argocd: new ArgocdTokenVerifier(TOKEN) });
    server = await listen(createApp({ logger: createLogger('silent'), metrics: createMetrics({ collectDefaults: false }), bodyLimitBytes: 1_000_000, routes, authenticate: async () => {} }));
  });
  after(async () => {
    await server.close();
    await sequelize.close();
    await scratch.remove();
  });

  async function post(body: unknown, token: string | null = TOKEN) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${server.url}/webhooks/argocd`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  const timed = (finishedAt: string, observedAt: string) => (n: ArgocdNotification) => {
    n.operation = { ...n.operation!, startedAt: '2026-11-28T03:40:03Z', finishedAt };
    n.health.observedAt = observedAt;
  };
  /** The parent applied main at `revision` (finished 03:40:00); then the instance Application speaks. */
  async function parentAt(change: OpenChange, revision: string, edit: (n: ArgocdNotification) => void = () => {}) {
    return post(parentNotice(change, revision, (n) => {
      n.operation = { ...n.operation!, startedAt: '2026-11-28T03:39:58Z', finishedAt: '2026-11-28T03:40:00Z' };
      n.health.observedAt = '2026-11-28T03:40:01Z';
      edit(n);
    }));
  }
  const child = (change: OpenChange, edit: (n: ArgocdNotification) => void = () => {}) =>
    childNotice(change, (n) => {
      timed('2026-11-28T03:40:05Z', '2026-11-28T03:40:09Z')(n);
      edit(n);
    });

  it('the parent Synced at a revision containing the merge, then the instance Application Healthy on main\'s spec: ready, naming the change', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    const first = await parentAt(change, newer);
    assert.equal(first.status, 200);
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing', 'the parent alone says nothing about the workload');
    const response = await post(child(change));
    assert.equal(response.status, 200);
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
    const [event] = await instanceEvents(sequelize, change.instanceId);
    assert.equal(event!.to_state, 'ready');
    assert.equal(event!.actor, 'argocd');
    assert.equal(event!.change_id, change.changeId);
    assert.match(event!.delivery_id ?? '', new RegExp(`${instanceApplicationName(change.orgSlug, change.instanceName)}\\|0\\.1\\.1`), 'the child reports its chart version, not a gsv-gitops commit');
  });

  it('in any order: the instance Application first, its parent after, is ready too (each Application\'s latest word is kept)', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await post(child(change));
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    await parentAt(change, merge);
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
  });

  it('a late, older notice of an Application does not replace its newer one', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, merge);
    await post(child(change, (n) => (n.health = { status: 'Degraded', message: 'Back-off', observedAt: '2026-11-28T03:41:00Z' })));
    assert.equal(await instanceState(sequelize, change.instanceId), 'degraded');
    // Argo CD retried an older Healthy (03:40:09): the Degraded of 03:41:00 stands.
    const late = await post(child(change));
    assert.equal(late.status, 200);
    assert.equal(await instanceState(sequelize, change.instanceId), 'degraded');
    // A later parent notice of an older sync does not undo the applied one either.
    await parentAt(change, older, (n) => (n.health.observedAt = '2026-11-28T03:30:00Z'));
    await post(child(change, (n) => (n.health.observedAt = '2026-11-28T03:42:00Z')));
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
  });

  it('the same payload four times makes one transition', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, merge);
    const body = child(change);
    const responses = await Promise.all([1, 2, 3, 4].map(() => post(body)));
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(responses.filter((r) => r.body.duplicate === false).length, 1);
    assert.equal((await instanceEvents(sequelize, change.instanceId)).length, 1);
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
  });

  it('the parent at an older revision (main\'s change not applied yet): not ready, whatever the child says', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, older);
    const response = await post(child(change));
    assert.equal(response.status, 200);
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    assert.match(String((response.body.outcome as { reason: string }).reason), /does not contain/);
  });

  it('the instance Application still carrying an older spec: not ready', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, merge);
    const response = await post(childNotice({ ...change, spec: { ...change.spec, version: '0.9.0' } }, timed('2026-11-28T03:40:05Z', '2026-11-28T03:40:09Z')));
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    assert.match(String((response.body.outcome as { reason: string }).reason), /does not carry main's spec/);
  });

  it('Healthy assessed before the child\'s sync, or before the parent applied it, is not trusted; a later assessment is', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, merge);
    await post(child(change, (n) => (n.health.observedAt = '2026-11-28T03:40:05Z')));
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    await post(child(change, (n) => {
      n.operation = null;
      n.health.observedAt = '2026-11-28T03:39:59Z';
    }));
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    await post(child(change, (n) => (n.health.observedAt = '2026-11-28T03:41:00Z')));
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
  });

  it('Degraded health marks the instance degraded, and a later Healthy recovers it', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, merge);
    await post(child(change, (n) => (n.health = { status: 'Degraded', message: 'Back-off restarting failed container', observedAt: '2026-11-28T03:40:30Z' })));
    assert.equal(await instanceState(sequelize, change.instanceId), 'degraded');
    const [row] = await sequelize.query<{ last_error: string }>('SELECT last_error FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: change.instanceId } });
    assert.match(row!.last_error, /Back-off/);
    await post(child(change, (n) => (n.health.observedAt = '2026-11-28T03:45:00Z')));
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
  });

  it('a failed sync of main\'s spec marks the instance failed; a failed parent sync of an older revision does not', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, older, (n) => (n.operation = { ...n.operation!, phase: 'Failed', message: 'one or more objects failed to apply' }));
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    await parentAt(change, merge, (n) => (n.health.observedAt = '2026-11-28T03:40:02Z'));
    await post(child(change, (n) => {
      n.sync.status = 'OutOfSync';
      n.operation = { ...n.operation!, phase: 'Failed', message: 'one or more objects failed to apply' };
    }));
    assert.equal(await instanceState(sequelize, change.instanceId), 'failed');
  });

  it('the parent failing to apply main marks the instance failed', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    await parentAt(change, merge, (n) => {
      n.sync.status = 'OutOfSync';
      n.operation = { ...n.operation!, phase: 'Failed', message: 'Application.argoproj.io "x" is invalid' };
    });
    assert.equal(await instanceState(sequelize, change.instanceId), 'failed');
  });

  it('a deleted instance Application completes a merged delete change', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge, state: 'deleting', desired: 'absent', kind: 'instance.delete' });
    await post(child(change, (n) => (n.app.deletionTimestamp = '2026-11-28T03:50:00Z')));
    assert.equal(await instanceState(sequelize, change.instanceId), 'deleted');
    assert.equal((await changeRow(sequelize, change.changeId)).status, 'merged');
  });

  it('does nothing while the change is not merged', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge, state: 'pending_review' });
    await sequelize.query(`UPDATE change_requests SET status = 'open', merge_commit_sha = NULL WHERE id = $id`, { bind: { id: change.changeId } });
    await parentAt(change, newer);
    const response = await post(child(change));
    assert.equal(response.status, 200);
    assert.equal(await instanceState(sequelize, change.instanceId), 'pending_review');
  });

  it('acknowledges with 202 a parent whose path main holds no instance at', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    const response = await post(parentNotice({ ...change, instanceName: 'nobody-here' }, merge));
    assert.equal(response.status, 202);
  });

  it('acknowledges with 202 an Application that is not an instance', async () => {
    const body = structuredClone(RECORDED);
    body.app.labels = { 'app.kubernetes.io/managed-by': 'someone-else' };
    const response = await post(body);
    assert.equal(response.status, 202);
  });

  it('rejects a missing or wrong bearer secret with 401 and a malformed payload with 400, with no effect', async () => {
    const change = await insertMergedChange(sequelize, { mergeCommitSha: merge });
    const body = child(change);
    assert.equal((await post(body, null)).status, 401);
    assert.equal((await post(body, 'argocd-bearer-secreT')).status, 401);
    assert.equal((await post(body, '')).status, 401);
    const malformed = await post({ ...body, sync: { status: 'Fine' } });
    assert.equal(malformed.status, 400);
    assert.ok(Array.isArray(malformed.body.errors));
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    const rows = await sequelize.query(`SELECT 1 FROM webhook_deliveries WHERE source = 'argocd' AND delivery_key LIKE $app`, { type: QueryTypes.SELECT, bind: { app: `%${body.app.name}%` } });
    assert.deepEqual(rows, []);
  });
});
