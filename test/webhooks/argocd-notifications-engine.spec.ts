import { instanceDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import { createAjv } from '../../src/validation.ts';
import { ArgocdNotificationSchema } from '../../src/webhooks/argocd-notification.ts';
import type { ArgocdApplication } from '../../src/jobs/argocd-applications.ts';
import { observationFromNotification } from '../../src/webhooks/argocd-events.ts';
import type { ArgocdNotification } from '../../src/webhooks/argocd-notification.ts';
import { observationFromApplication } from '../../src/jobs/argocd-applications.ts';
import { git } from '../../src/gitops/local/git.ts';
import { evaluateNotifications, notificationsConfig, type EngineResult, type NotificationsConfig } from '../support/argocd-engine.ts';
import { childApplication, parentApplication } from '../support/argocd-notices.ts';
import type { Caller } from '../support/scratch-service.ts';
import { specOnMain } from '../support/spec-on-main.ts';
import { useSpecDatabase } from '../support/database.ts';
import { startInProcessService, startServiceWithWorkspace, type InProcessService } from '../support/in-process-service.ts';

const require = createRequire(import.meta.url);
const CHILD = require('../fixtures/argocd/application-synced-healthy.json') as ArgocdApplication & Record<string, unknown>;
const PARENT = require('../fixtures/argocd/application-parent-synced.json') as ArgocdApplication & Record<string, unknown>;
const CONFIG = new URL('../../templates/platform/argocd-tenants/configmap-argocd-notifications.yaml', import.meta.url);
const TOKEN = 'argocd-engine-spec-token';

type App = Record<string, unknown> & { metadata: Record<string, unknown>; status?: Record<string, unknown> };
type Status = Record<string, Record<string, unknown>>;

/** A copy of `of` (an Application as Argo CD stores it) changed by `change`. */
function variant(of: ArgocdApplication, label: string, change: (app: App, status: Status) => void): { label: string; app: App } {
  const app = structuredClone(of) as unknown as App;
  change(app, (app.status ?? {}) as Status);
  return { label, app };
}

/**
 * Application objects as Argo CD stores them at the moments a notification is evaluated (field
 * names from argo-cd's pkg/apis/application/v1alpha1/types.go): the instance Application (a
 * Helm-sourced child, whose revisions are the chart version, never a gsv-gitops commit) created
 * with no status yet, freshly compared, synced, health assessed in the sync's own second, failed
 * with and without a syncResult, running, deleting, degraded, without labels or annotations; and
 * its git-sourced parent apps-<org>-<name> synced, failed, running and with no status.
 */
function corpus(): { label: string; app: App }[] {
  return [
    variant(CHILD, 'no status yet (just created)', (app) => delete app.status),
    variant(CHILD, 'fresh: compared, never synced', (app) => {
      app.status = { sync: { status: 'OutOfSync', revision: '0.1.1' }, health: { status: 'Missing' }, reconciledAt: '2026-11-28T03:40:00Z', sourceType: 'Helm' };
    }),
    variant(CHILD, 'synced and healthy, assessed after the sync', () => {}),
    variant(CHILD, 'healthy, assessed in the same second the sync finished', (_app, status) => (status.reconciledAt = status.operationState!.finishedAt as Record<string, unknown>)),
    variant(CHILD, 'sync failed with a syncResult', (_app, status) => Object.assign(status.operationState!, { phase: 'Failed', message: 'one or more objects failed to apply' })),
    variant(CHILD, 'sync errored before any syncResult', (_app, status) => {
      const operation = status.operationState!;
      delete operation.syncResult;
      delete operation.finishedAt;
      Object.assign(operation, { phase: 'Error', message: 'ComparisonError: rpc error' });
    }),
    variant(CHILD, 'sync running', (_app, status) => {
      delete status.operationState!.finishedAt;
      status.operationState!.phase = 'Running';
    }),
    variant(CHILD, 'being deleted', (app) => (app.metadata.deletionTimestamp = '2026-11-28T04:00:00Z')),
    variant(CHILD, 'degraded', (_app, status) => (status.health = { status: 'Degraded', message: 'Deployment exceeded its progress deadline' })),
    variant(CHILD, 'no labels, no annotations, no health', (app, status) => {
      delete app.metadata.labels;
      delete app.metadata.annotations;
      status.health = {};
    }),
    variant(PARENT, 'parent: synced at a gsv-gitops commit', () => {}),
    variant(PARENT, 'parent: sync failed applying the instance Application', (_app, status) => {
      Object.assign(status.operationState!, { phase: 'Failed', message: 'Application.argoproj.io "app--acme--main" is invalid' });
      status.sync!.status = 'OutOfSync';
    }),
    variant(PARENT, 'parent: sync running', (_app, status) => {
      delete status.operationState!.finishedAt;
      status.operationState!.phase = 'Running';
    }),
    variant(PARENT, 'parent: no status yet', (app) => delete app.status),
  ];
}

/**
 * Issue 12 §3: our argocd-notifications-cm, evaluated and rendered by Argo CD's own engines
 * (Go text/template + sprig, expr; test/support/argocd-engine/main.go), never by an emulation.
 */
describe('Argo CD notifications, by Argo CD\'s engines (Go text/template + sprig, expr)', function () {
  useSpecDatabase();
  this.timeout(120_000);
  let config: NotificationsConfig;
  let results: EngineResult[];
  let app: InProcessService;
  const validate = createAjv({ useDefaults: false }).compile(ArgocdNotificationSchema);

  before(async () => {
    const configMap = YAML.parse(await fs.readFile(CONFIG, 'utf8')) as { data: Record<string, string> };
    config = notificationsConfig(configMap.data);
    results = await evaluateNotifications(config, corpus());
    app = await startInProcessService('argocd-engine', { ARGOCD_WEBHOOK_TOKEN: TOKEN, SYNC_SIMULATOR: 'false' });
  });
  after(async () => {
    await app?.close();
  });

  it('evaluates every trigger condition on every Application without an error (nil checks, not missing fields)', () => {
    assert.ok(Object.keys(config.triggers).length >= 4);
    assert.equal(results.length, corpus().length * Object.values(config.triggers).reduce((n, c) => n + c.length, 0));
    const errors = results.filter((r) => r.error).map((r) => `${r.trigger} on "${r.app}": ${r.error}`);
    assert.deepEqual(errors, []);
  });

  it('renders every body it sends as JSON that our payload schema accepts, and /webhooks/argocd answers it', async () => {
    const sent = results.flatMap((r) => (r.sent ?? []).map((s) => ({ ...s, from: `${r.trigger} on "${r.app}"` })));
    assert.ok(sent.length > 0);
    for (const s of sent) {
      assert.equal(s.error, undefined, `${s.from}: ${s.error}`);
      assert.equal(s.path, '/webhooks/argocd', s.from);
      let body: unknown;
      assert.doesNotThrow(() => (body = JSON.parse(s.body!)), `${s.from}: not JSON:\n${s.body}`);
      assert.ok(validate(body), `${s.from}: ${JSON.stringify(validate.errors)}`);
      const response = await fetch(`${app.url}${s.path}`, { method: s.method, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: s.body });
      assert.ok(response.status < 300, `${s.from}: ${response.status} ${await response.text()}`);
    }
  });

  it('fires control-plane-deployed only for health assessed after the sync finished, and control-plane-deleted for a deletion', () => {
    const fired = (trigger: string, label: string) => results.find((r) => r.trigger === trigger && r.app === label)?.fired;
    assert.equal(fired('control-plane-deployed', 'synced and healthy, assessed after the sync'), true);
    assert.equal(fired('control-plane-deployed', 'no status yet (just created)'), false);
    assert.equal(fired('control-plane-deployed', 'healthy, assessed in the same second the sync finished'), false);
    assert.equal(fired('control-plane-deleted', 'being deleted'), true);
    assert.equal(fired('control-plane-sync-failed', 'sync errored before any syncResult'), true);
  });

  it('keys oncePer on the sync operation, so that every new sync (a parameter update keeps the chart version) notifies again', () => {
    const child = results.filter((r) => r.app === 'synced and healthy, assessed after the sync' && r.fired && r.oncePer !== undefined);
    assert.ok(child.length > 0);
    for (const r of child) assert.notEqual(r.oncePer, '0.1.1', `${r.trigger}: oncePer is the chart version, the same for every sync of that version`);
  });

  it('notifies for the parent\'s sync (succeeded or failed), the other half of the readiness rule', () => {
    const fired = (trigger: string, label: string) => results.find((r) => r.trigger === trigger && r.app === label)?.fired;
    assert.equal(fired('control-plane-sync-succeeded', 'parent: synced at a gsv-gitops commit'), true);
    assert.equal(fired('control-plane-sync-failed', 'parent: sync failed applying the instance Application'), true);
    assert.equal(fired('control-plane-sync-succeeded', 'parent: sync running'), false);
  });

  it('renders, for every object, a body that says what the reconciler reads from the same object (the two paths apply one rule)', async () => {
    // A trigger that always fires renders the template for every object of the corpus.
    const always = { ...config, triggers: { always: [{ when: 'true', send: ['control-plane-app-status'] }] } };
    const rendered = await evaluateNotifications(always, corpus());
    for (const { label, app } of corpus()) {
      const sent = rendered.find((r) => r.app === label)?.sent?.[0];
      assert.ok(sent?.body, `${label}: ${sent?.error ?? 'nothing rendered'}`);
      const body = JSON.parse(sent.body) as ArgocdNotification;
      assert.ok(validate(body), `${label}: ${JSON.stringify(validate.errors)}`);
      const object = app as unknown as ArgocdApplication;
      if (!object.metadata.labels) continue; // names nobody either way
      assert.deepEqual(observationFromNotification(body), observationFromApplication(object), label);
    }
  });
});

/**
 * Issue 12, done when: from Application objects rendered by Argo CD's own template engine, a real
 * instance (created through the API, committed to main) reaches ready, degraded, failed and
 * deleted through /webhooks/argocd.
 */
describe('an instance\'s lifecycle, told by Argo CD\'s rendered notices', function () {
  useSpecDatabase();
  this.timeout(120_000);
  let config: NotificationsConfig;
  let app: InProcessService;
  let caller: Caller;
  let org: string;

  before(async () => {
    const configMap = YAML.parse(await fs.readFile(CONFIG, 'utf8')) as { data: Record<string, string> };
    config = notificationsConfig(configMap.data);
    ({ app, caller, org } = await startServiceWithWorkspace('argocd-lifecycle', { ARGOCD_WEBHOOK_TOKEN: TOKEN, GITOPS_MERGE_POLICY: 'direct' }));
  });
  after(async () => {
    await app?.close();
  });

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${app.url}${path}`, { method, headers: { ...caller.headers, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }
  async function stateBecomes(id: string, wanted: string): Promise<string> {
    let state = '';
    for (let i = 0; i < 150 && state !== wanted; i += 1) {
      state = String((await api('GET', `/instances/${id}`)).body.state);
      if (state !== wanted) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return state;
  }
  const head = async () => (await git(['rev-parse', 'main'], { gitDir: app.gitDir })).trim();
  /** GET /instances/:id's conditions, by type. */
  async function conditions(id: string): Promise<Record<string, { status: string; reason: string; message: string } | undefined>> {
    const list = (await api('GET', `/instances/${id}`)).body.conditions as { type: string; status: string; reason: string; message: string }[];
    return Object.fromEntries(list.map((c) => [c.type, c]));
  }
  const iso = (offsetSeconds: number) => new Date(Math.floor(Date.now() / 1000) * 1000 + offsetSeconds * 1000).toISOString().replace('.000Z', 'Z');

  /** The parent and the instance Application as Argo CD would store them once main is applied. */
  async function objects(id: string, name: string) {
    const revision = await head();
    const spec = await specOnMain(app.gitDir, revision, `${instanceDir(org, name, 'bucketed')}`);
    const target = { instanceId: id, orgSlug: org, instanceName: name, spec: spec! };
    const parent = parentApplication(target, revision, (a) => {
      Object.assign(a.status!.operationState!, { startedAt: iso(-6), finishedAt: iso(-5) });
      a.status!.reconciledAt = iso(-4);
    });
    const child = childApplication(target, (a) => {
      Object.assign(a.status!.operationState!, { startedAt: iso(-3), finishedAt: iso(-2) });
      a.status!.reconciledAt = iso(0);
    });
    return { parent, child };
  }

  /** Evaluates every trigger on `apps` with the Go engine and posts what fires, as Argo CD would. */
  async function notify(apps: ArgocdApplication[]): Promise<string[]> {
    const results = await evaluateNotifications(config, apps.map((a, i) => ({ label: `${i} ${a.metadata.name}`, app: a as unknown as App })));
    const fired: string[] = [];
    for (const r of results) {
      assert.equal(r.error, undefined, `${r.trigger}: ${r.error}`);
      for (const s of r.sent ?? []) {
        assert.equal(s.error, undefined);
        const response = await fetch(`${app.url}${s.path}`, { method: s.method, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: s.body });
        assert.ok(response.status < 300, `${r.trigger}: ${response.status} ${await response.text()}`);
        fired.push(r.trigger);
      }
    }
    return fired;
  }

  it('reaches ready, then degraded, failed, ready again, and deleted', async () => {
    const created = await api('POST', '/instances', { org, offering: 'studio', name: 'told-by-argocd' });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = String(created.body.id);
    assert.equal(await stateBecomes(id, 'syncing'), 'syncing');
    const { parent, child } = await objects(id, 'told-by-argocd');

    // The instance Application alone (its revision is the chart version) is not enough.
    await notify([child]);
    assert.equal(await stateBecomes(id, 'syncing'), 'syncing');
    const waiting = await conditions(id);
    assert.deepEqual([waiting.Synced?.status, waiting.Synced?.reason], ['True', 'MainHoldsRequest']);
    assert.deepEqual([waiting.Ready?.status, waiting.Ready?.reason], ['Unknown', 'AwaitingArgoCD']);
    assert.ok((await notify([parent])).includes('control-plane-sync-succeeded'));
    assert.equal(await stateBecomes(id, 'ready'), 'ready');
    assert.deepEqual([(await conditions(id)).Ready?.status, (await conditions(id)).Ready?.reason], ['True', 'Healthy']);

    const degraded = structuredClone(child);
    degraded.status!.health = { status: 'Degraded', message: 'Back-off restarting failed container' };
    degraded.status!.reconciledAt = iso(1);
    assert.ok((await notify([degraded])).includes('control-plane-health-degraded'));
    assert.equal(await stateBecomes(id, 'degraded'), 'degraded');
    const sick = (await conditions(id)).Ready!;
    assert.deepEqual([sick.status, sick.reason], ['False', 'Degraded']);
    assert.match(sick.message, /Back-off restarting failed container/, "Argo CD's health message, passed through");

    const failed = structuredClone(child);
    Object.assign(failed.status!.operationState!, { phase: 'Failed', message: 'one or more objects failed to apply', startedAt: iso(1), finishedAt: iso(2) });
    failed.status!.sync!.status = 'OutOfSync';
    failed.status!.reconciledAt = iso(2);
    assert.ok((await notify([failed])).includes('control-plane-sync-failed'));
    assert.equal(await stateBecomes(id, 'failed'), 'failed');

    const recovered = structuredClone(child);
    Object.assign(recovered.status!.operationState!, { startedAt: iso(3), finishedAt: iso(4) });
    recovered.status!.reconciledAt = iso(5);
    assert.ok((await notify([recovered])).includes('control-plane-deployed'));
    assert.equal(await stateBecomes(id, 'ready'), 'ready');

    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    assert.equal(await stateBecomes(id, 'deleting'), 'deleting');
    const deleting = structuredClone(recovered);
    deleting.metadata.deletionTimestamp = iso(6);
    assert.ok((await notify([deleting])).includes('control-plane-deleted'));
    assert.equal(await stateBecomes(id, 'deleted'), 'deleted');
  });
});
