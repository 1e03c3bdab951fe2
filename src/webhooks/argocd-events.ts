import type { Sequelize } from 'sequelize';
import type { ApplicationObservation } from '../domain/application-status.ts';
import { applyApplicationObservation, prefetchAncestry, type ApplicationSyncDeps, type ObservationOutcome } from '../domain/application-sync.ts';
import { INSTANCE_ID_LABEL } from '../gitops/labels.ts';
import type { ArgocdNotification } from './argocd-notification.ts';
import { processDelivery } from './webhook-deliveries.ts';

export type ArgocdNotificationResult = { duplicate: boolean; outcome: ObservationOutcome | null };

export function observationFromNotification(notification: ArgocdNotification): ApplicationObservation {
  const operation = notification.operation;
  return {
    application: notification.app.name,
    instanceId: notification.app.labels?.[INSTANCE_ID_LABEL],
    syncStatus: notification.sync.status,
    syncRevision: notification.sync.revision,
    operation: operation
      ? { phase: operation.phase, finishedAt: operation.finishedAt, revision: operation.syncResultRevision, message: operation.message ?? null }
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
 * operation and must not be mistaken for a retry. A retry resends the same body, same key.
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
