import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import YAML from 'yaml';

const CONFIG = new URL('../../templates/platform/argocd-tenants/configmap-argocd-notifications.yaml', import.meta.url);
const PARENTS = new URL('../../templates/platform/argocd-tenants/applicationset-tenant-apps.yaml', import.meta.url);

/** Subscriptions (notifications.argoproj.io/subscribe.<trigger>.control-plane) among `annotations`. */
function subscribedTriggers(annotations: Record<string, string> | undefined): string[] {
  return Object.keys(annotations ?? {}).flatMap((key) => {
    const match = /^notifications\.argoproj\.io\/subscribe\.([^.]+)\.control-plane$/.exec(key);
    return match ? [match[1]!] : [];
  });
}

// How the templates render is proven with Argo CD's own engines in
// argocd-notifications-engine.spec.ts; this spec checks that the pieces name each other.
describe('Argo CD notifications configuration (triggers, templates, subscriptions)', () => {
  it('every trigger sends the template, and every subscription of an offering and of the parent names a trigger that exists', async () => {
    const configMap = YAML.parse(await fs.readFile(CONFIG, 'utf8')) as { data: Record<string, string> };
    const triggers = Object.keys(configMap.data).filter((key) => key.startsWith('trigger.'));
    for (const trigger of triggers) {
      const conditions = YAML.parse(configMap.data[trigger]!) as Array<{ send: string[] }>;
      assert.ok(conditions.every((c) => c.send.includes('control-plane-app-status')), `${trigger} sends control-plane-app-status`);
    }
    const offerings = new URL('../../templates/offerings/', import.meta.url);
    let subscriptions = 0;
    for (const offering of await fs.readdir(offerings)) {
      for (const version of await fs.readdir(new URL(`${offering}/`, offerings)).catch(() => [])) {
        const text = await fs.readFile(new URL(`${offering}/${version}/application.yaml`, offerings), 'utf8').catch(() => undefined);
        if (!text) continue;
        for (const trigger of subscribedTriggers((YAML.parse(text) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations)) {
          subscriptions += 1;
          assert.ok(triggers.includes(`trigger.${trigger}`), `${offering}/${version} subscribes to ${trigger}, which the ConfigMap defines`);
        }
      }
    }
    assert.ok(subscriptions > 0, 'the offerings subscribe to notifications');
    const parent = YAML.parse(await fs.readFile(PARENTS, 'utf8')) as { spec: { template: { metadata: { annotations?: Record<string, string> } } } };
    const parentTriggers = subscribedTriggers(parent.spec.template.metadata.annotations);
    assert.deepEqual(parentTriggers.sort(), ['control-plane-sync-failed', 'control-plane-sync-succeeded'], 'the parent notifies its sync, succeeded or failed');
    for (const trigger of parentTriggers) assert.ok(triggers.includes(`trigger.${trigger}`));
  });
});
