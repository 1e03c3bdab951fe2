import { createRequire } from 'node:module';
import type { ArgocdNotification } from '../../src/webhooks/argocd-notification.ts';

const require = createRequire(import.meta.url);
const RECORDED = require('../fixtures/argocd/sync-succeeded-healthy.json') as ArgocdNotification;

/**
 * A fresh Synced + Healthy notice for one instance at `revision`, as our notification template
 * renders it (the recorded fixture): the sync finished two seconds ago and health was assessed
 * now, so the readiness rule trusts it. `change` edits it further (health, deletionTimestamp).
 */
export function freshNotice(instanceId: string, revision: string, change: (n: ArgocdNotification) => void = () => {}): ArgocdNotification {
  const n = structuredClone(RECORDED);
  n.app.name = `app-${instanceId.slice(0, 8)}`;
  n.app.labels = { ...n.app.labels, 'gsv.io/instance-id': instanceId };
  n.sync.revision = revision;
  n.operation!.syncResultRevision = revision;
  n.operation!.finishedAt = new Date(Date.now() - 2000).toISOString();
  n.health.observedAt = new Date().toISOString();
  change(n);
  return n;
}
