import type { Sequelize } from 'sequelize';
import type { ApplicationObservation } from '../domain/application-status.ts';
import { createHash } from 'node:crypto';
import { applyApplicationObservation, prefetchAncestry, subjectOf, type ApplicationSyncDeps, type ObservationOutcome } from '../domain/application-sync.ts';
import type { ArgocdNotification } from './argocd-notification.ts';
import { processDelivery } from './webhook-deliveries.ts';

export type ArgocdNotificationResult = { duplicate: boolean; outcome: ObservationOutcome | null };

export function observationFromNotification(notification: ArgocdNotification): ApplicationObservation {
  const operation = notification.operation;
  return {
    application: notification.app.name,
    subject: subjectOf(notification.app.labels),
    spec: notification.app.instanceSpec ?? null,
    syncStatus: notification.sync.status,
    syncRevision: notification.sync.revision,
    operation: operation
      ? { phase: operation.phase, startedAt: operation.startedAt ?? null, finishedAt: operation.finishedAt, revision: operation.syncResultRevision, message: operation.message ?? null }
      : null,
    healthStatus: notification.health.status,
    healthMessage: notification.health.message ?? null,
    healthObservedAt: notification.health.observedAt,
    deleting: Boolean(notification.app.deletionTimestamp),
  };
}

/**
 * Argo CD sends no delivery id and retries (and sometimes duplicates despite oncePer), so a
 * notification is identified by what it reports: application, revision, operation phase and
 * finishedAt; plus health status, when it was assessed, and deletion, because a health change
 * (Degraded after a Succeeded sync) or a fresher assessment of the same sync reports the same
 * operation and must not be mistaken for a retry; and the spec the instance Application carries.
 * A retry resends the same body, same key.
 */
export function notificationKey(notification: ArgocdNotification): string {
  const app = notification.app;
  return [
    `${app.namespace ?? ''}/${app.name}`,
    notification.operation?.syncResultRevision ?? notification.sync.revision ?? '',
    notification.operation?.phase ?? '',
    notification.operation?.finishedAt ?? '',
    notification.health.status,
    notification.health.observedAt ?? '',
    app.deletionTimestamp ? 'deleting' : '',
    // The parent applying a new spec to the child changes the child's annotation, not always its status.
    app.instanceSpec ? createHash('sha256').update(app.instanceSpec).digest('base64url').slice(0, 22) : '',
  ].join('|');
}

/** Applies one authenticated, validated notification, once per key. */
export async function receiveArgocdNotification(
  deps: ApplicationSyncDeps & { sequelize: Sequelize },
  notification: ArgocdNotification,
): Promise<ArgocdNotificationResult> {
  const key = notificationKey(notification);
  const observation = observationFromNotification(notification);
  await prefetchAncestry(deps, observation);
  const result = await processDelivery(deps.sequelize, { source: 'argocd', key, event: notification.trigger ?? 'notification' }, (tx) =>
    applyApplicationObservation(deps, tx, observation, { cause: `argocd.${notification.trigger ?? 'notification'}`, actor: 'argocd', deliveryId: key }),
  );
  return result.duplicate ? { duplicate: true, outcome: (result.outcome as ObservationOutcome | null) ?? null } : { duplicate: false, outcome: result.outcome };
}
