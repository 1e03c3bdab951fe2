import { createRequire } from 'node:module';
import type { ArgocdApplication } from '../../src/jobs/argocd-applications.ts';
import { instanceApplicationName, parentApplicationName } from '../../src/gitops/tenant-paths.ts';
import { specAnnotation, type InstanceSpec } from '../../src/gitops/instance-spec.ts';
import type { ArgocdNotification } from '../../src/webhooks/argocd-notification.ts';

const require = createRequire(import.meta.url);
// As our notification template renders them (test/webhooks/argocd-notifications-engine.spec.ts
// renders the same from Application objects with Argo CD's engine).
const CHILD_NOTICE = require('../fixtures/argocd/sync-succeeded-healthy.json') as ArgocdNotification;
const PARENT_NOTICE = require('../fixtures/argocd/parent-sync-succeeded.json') as ArgocdNotification;
// As Argo CD stores them: the instance Application (Helm source) and its parent (gsv-gitops).
const CHILD_APPLICATION = require('../fixtures/argocd/application-synced-healthy.json') as ArgocdApplication;
const PARENT_APPLICATION = require('../fixtures/argocd/application-parent-synced.json') as ArgocdApplication;

/** The instance an Application speaks for, and the spec main holds for it. */
export interface NoticeTarget {
  instanceId: string;
  orgSlug: string;
  instanceName: string;
  /** What main holds (the child carries it as its gsv.io/spec annotation once the parent applied it). */
  spec: InstanceSpec;
}

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

/** The parent apps-… Synced at `revision` (a gsv-gitops commit), its operation finished four seconds ago. */
export function parentNotice(target: NoticeTarget, revision: string, change: (n: ArgocdNotification) => void = () => {}): ArgocdNotification {
  const n = structuredClone(PARENT_NOTICE);
  n.app.name = parentApplicationName(target.orgSlug, target.instanceName);
  n.app.labels = { ...n.app.labels, 'gsv.io/org': target.orgSlug, 'gsv.io/instance-name': target.instanceName };
  n.sync.revision = revision;
  n.operation = { ...n.operation!, syncResultRevision: revision, startedAt: ago(6000), finishedAt: ago(4000) };
  n.health.observedAt = ago(3000);
  change(n);
  return n;
}

/** The instance Application carrying `target.spec`, its sync finished two seconds ago and Healthy assessed now. */
export function childNotice(target: NoticeTarget, change: (n: ArgocdNotification) => void = () => {}): ArgocdNotification {
  const n = structuredClone(CHILD_NOTICE);
  n.app.name = instanceApplicationName(target.orgSlug, target.instanceName);
  n.app.labels = { ...n.app.labels, 'gsv.io/org': target.orgSlug, 'gsv.io/instance-id': target.instanceId };
  n.app.instanceSpec = specAnnotation(target.spec);
  n.operation = { ...n.operation!, startedAt: ago(3000), finishedAt: ago(2000) };
  n.health.observedAt = new Date().toISOString();
  change(n);
  return n;
}

/**
 * What Argo CD sends once main's spec at `revision` is applied and healthy: the parent's
 * sync, then the instance Application's. `change` edits the child's notice (health, deletion).
 */
export function freshNotices(target: NoticeTarget, revision: string, change: (n: ArgocdNotification) => void = () => {}): ArgocdNotification[] {
  return [parentNotice(target, revision), childNotice(target, change)];
}

/** The parent Application object as the reconciler lists it, Synced at `revision`. */
export function parentApplication(target: NoticeTarget, revision: string, change: (app: ArgocdApplication) => void = () => {}): ArgocdApplication {
  const app = structuredClone(PARENT_APPLICATION);
  app.metadata.name = parentApplicationName(target.orgSlug, target.instanceName);
  app.metadata.labels = { ...app.metadata.labels, 'gsv.io/org': target.orgSlug, 'gsv.io/instance-name': target.instanceName };
  app.status!.sync!.revision = revision;
  app.status!.operationState!.syncResult!.revision = revision;
  change(app);
  return app;
}

/** The instance Application object as the reconciler lists it, carrying `target.spec`. */
export function childApplication(target: NoticeTarget, change: (app: ArgocdApplication) => void = () => {}): ArgocdApplication {
  const app = structuredClone(CHILD_APPLICATION);
  app.metadata.name = instanceApplicationName(target.orgSlug, target.instanceName);
  app.metadata.labels = { ...app.metadata.labels, 'gsv.io/org': target.orgSlug, 'gsv.io/instance-id': target.instanceId };
  app.metadata.annotations = { ...app.metadata.annotations, 'gsv.io/spec': specAnnotation(target.spec) };
  change(app);
  return app;
}
