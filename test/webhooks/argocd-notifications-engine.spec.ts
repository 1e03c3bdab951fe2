import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import { createAjv } from '../../src/validation.ts';
import { ArgocdNotificationSchema } from '../../src/webhooks/argocd-notification.ts';
import type { ArgocdApplication } from '../../src/jobs/argocd-applications.ts';
import { evaluateNotifications, notificationsConfig, type EngineResult, type NotificationsConfig } from '../support/argocd-engine.ts';
import { useSpecDatabase } from '../support/database.ts';
import { startInProcessService, type InProcessService } from '../support/in-process-service.ts';

const require = createRequire(import.meta.url);
const RECORDED = require('../fixtures/argocd/application-synced-healthy.json') as ArgocdApplication & Record<string, unknown>;
const CONFIG = new URL('../../templates/platform/argocd-tenants/configmap-argocd-notifications.yaml', import.meta.url);
const TOKEN = 'argocd-engine-spec-token';

type App = Record<string, unknown> & { metadata: Record<string, unknown>; status?: Record<string, unknown> };

/**
 * Application objects as Argo CD stores them at the moments a notification is evaluated (field
 * names from argo-cd's pkg/apis/application/v1alpha1/types.go): created with no status yet,
 * freshly compared, synced, health assessed in the sync's own second, failed with and without
 * a syncResult, deleting, degraded, without labels, and a Helm-sourced child (whose revision is
 * the chart version, not a gsv-gitops commit) beside its git-sourced parent.
 */
function corpus(): { label: string; app: App }[] {
  const base = () => structuredClone(RECORDED) as unknown as App;
  const status = (app: App) => app.status as Record<string, Record<string, unknown>>;
  const with_ = (label: string, change: (app: App) => void) => {
    const app = base();
    change(app);
    return { label, app };
  };
  return [
    with_('no status yet (just created)', (app) => delete app.status),
    with_('fresh: compared, never synced', (app) => {
      app.status = { sync: { status: 'OutOfSync', revision: '0.1.1' }, health: { status: 'Missing' }, reconciledAt: '2026-11-28T03:40:00Z', sourceType: 'Helm' };
    }),
    with_('synced and healthy, assessed after the sync', () => {}),
    with_('healthy, assessed in the same second the sync finished', (app) => (status(app).reconciledAt = status(app).operationState!.finishedAt as unknown as Record<string, unknown>)),
    with_('sync failed with a syncResult', (app) => Object.assign(status(app).operationState!, { phase: 'Failed', message: 'one or more objects failed to apply' })),
    with_('sync errored before any syncResult', (app) => {
      const operation = status(app).operationState!;
      delete operation.syncResult;
      delete operation.finishedAt;
      Object.assign(operation, { phase: 'Error', message: 'ComparisonError: rpc error' });
    }),
    with_('sync running', (app) => {
      const operation = status(app).operationState!;
      delete operation.finishedAt;
      operation.phase = 'Running';
    }),
    with_('being deleted', (app) => (app.metadata.deletionTimestamp = '2026-11-28T04:00:00Z')),
    with_('degraded', (app) => (status(app).health = { status: 'Degraded', message: 'Deployment exceeded its progress deadline' })),
    with_('no labels, no health', (app) => {
      delete app.metadata.labels;
      status(app).health = {};
    }),
    with_('Helm-sourced child: revisions are the chart version', (app) => {
      status(app).sync!.revision = '0.1.1';
      (status(app).operationState!.syncResult as Record<string, unknown>).revision = '0.1.1';
    }),
    with_('git-sourced parent apps--<org>--<name>', (app) => {
      app.metadata.name = 'apps--acme--main';
      app.metadata.labels = { 'app.kubernetes.io/managed-by': 'control-plane', 'gsv.io/org': 'acme' };
      app.spec = { project: 'platform-tenants', source: { repoURL: 'https://github.com/gsv/gsv-gitops.git', targetRevision: 'main', path: 'tenants/acme/apps/main' } };
      status(app).sourceType = 'Directory' as unknown as Record<string, unknown>;
    }),
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

  it('fires on-deployed only for health assessed after the sync finished, and on-deleted for a deletion', () => {
    const fired = (trigger: string, label: string) => results.find((r) => r.trigger === trigger && r.app === label)?.fired;
    assert.equal(fired('on-deployed', 'synced and healthy, assessed after the sync'), true);
    assert.equal(fired('on-deployed', 'healthy, assessed in the same second the sync finished'), false);
    assert.equal(fired('on-deleted', 'being deleted'), true);
    assert.equal(fired('on-sync-failed', 'sync errored before any syncResult'), true);
  });

  it('keys oncePer on the sync operation, so that every new sync (a parameter update keeps the chart version) notifies again', () => {
    const child = results.filter((r) => r.app === 'Helm-sourced child: revisions are the chart version' && r.fired && r.oncePer !== undefined);
    assert.ok(child.length > 0);
    for (const r of child) assert.notEqual(r.oncePer, '0.1.1', `${r.trigger}: oncePer is the chart version, the same for every sync of that version`);
  });
});
