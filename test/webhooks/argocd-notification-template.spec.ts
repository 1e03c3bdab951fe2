import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import { createAjv } from '../../src/validation.ts';
import { ArgocdNotificationSchema } from '../../src/webhooks/argocd-notification.ts';
import { observationFromNotification } from '../../src/webhooks/argocd-events.ts';
import { observationFromApplication, type ArgocdApplication } from '../../src/jobs/argocd-applications.ts';
import { renderGoTemplate } from '../support/go-template-subset.ts';

const require = createRequire(import.meta.url);
const RECORDED = require('../fixtures/argocd/application-synced-healthy.json') as ArgocdApplication;
const CONFIG = new URL('../../templates/platform/argocd-tenants/configmap-argocd-notifications.yaml', import.meta.url);

describe('Argo CD notifications template (the payload contract)', () => {
  let body: string;
  let triggers: string[];
  const validate = createAjv({ useDefaults: false }).compile(ArgocdNotificationSchema);

  before(async () => {
    const configMap = YAML.parse(await fs.readFile(CONFIG, 'utf8')) as { data: Record<string, string> };
    const template = YAML.parse(configMap.data['template.app-status']!) as { webhook: { 'control-plane': { body: string; path: string } } };
    assert.equal(template.webhook['control-plane'].path, '/webhooks/argocd');
    body = template.webhook['control-plane'].body;
    triggers = Object.keys(configMap.data).filter((key) => key.startsWith('trigger.'));
  });

  const variants: Array<[string, (app: ArgocdApplication) => void]> = [
    ['a recorded Synced + Healthy Application', () => {}],
    ['an Application that never ran an operation', (app) => delete app.status!.operationState],
    ['an Application being deleted', (app) => (app.metadata.deletionTimestamp = '2026-11-28T04:00:00Z')],
    ['an Application without health or labels yet', (app) => {
      delete app.metadata.labels;
      app.status!.health = {};
    }],
  ];
  for (const [name, change] of variants) {
    it(`renders ${name} as a payload the webhook accepts, carrying the same facts the reconciler reads`, () => {
      const app = structuredClone(RECORDED);
      change(app);
      const rendered = JSON.parse(renderGoTemplate(body, { app })) as unknown;
      assert.ok(validate(rendered), JSON.stringify(validate.errors));
      const fromNotification = observationFromNotification(rendered as Parameters<typeof observationFromNotification>[0]);
      assert.deepEqual(fromNotification, observationFromApplication(app));
    });
  }

  it('every trigger sends the template, and every subscription of an offering names a trigger that exists', async () => {
    const configMap = YAML.parse(await fs.readFile(CONFIG, 'utf8')) as { data: Record<string, string> };
    for (const trigger of triggers) {
      const conditions = YAML.parse(configMap.data[trigger]!) as Array<{ send: string[] }>;
      assert.ok(conditions.every((c) => c.send.includes('app-status')), `${trigger} sends app-status`);
    }
    const offerings = new URL('../../templates/offerings/', import.meta.url);
    let subscriptions = 0;
    for (const offering of await fs.readdir(offerings)) {
      for (const version of await fs.readdir(new URL(`${offering}/`, offerings)).catch(() => [])) {
        const file = new URL(`${offering}/${version}/application.yaml`, offerings);
        const text = await fs.readFile(file, 'utf8').catch(() => undefined);
        if (!text) continue;
        const annotations = (YAML.parse(text) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations ?? {};
        for (const key of Object.keys(annotations)) {
          const match = /^notifications\.argoproj\.io\/subscribe\.([^.]+)\.control-plane$/.exec(key);
          if (!match) continue;
          subscriptions += 1;
          assert.ok(triggers.includes(`trigger.${match[1]}`), `${offering}/${version} subscribes to ${match[1]}, which the ConfigMap defines`);
        }
      }
    }
    assert.ok(subscriptions > 0, 'the offerings subscribe to notifications');
  });
});
