import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { INSTANCE_SPEC_ANNOTATION } from '../gitops/instance-spec.ts';
import { APPLICATION_TIER_LABEL, INSTANCE_ID_LABEL, INSTANCE_NAME_LABEL, ORG_LABEL, PARENT_TIER } from '../gitops/labels.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339, as Argo CD writes it (e.g. 2026-11-28T03:40:00Z).' });

/**
 * The JSON that our Argo CD Notifications template (templates/platform/argocd-notifications/)
 * posts to `POST /webhooks/argocd`, and that the development sync simulator posts too. Field
 * for field it is the Application's own status, so the Argo CD reconciler, which reads
 * Application objects from the cluster, applies exactly the same rules.
 */
export const ArgocdNotificationSchema = Type.Object(
  {
    app: Type.Object({
      name: Type.String({ minLength: 1, maxLength: 253, description: 'metadata.name' }),
      namespace: Type.Optional(Nullable(Type.String({ description: 'metadata.namespace' }))),
      labels: Nullable(
        Type.Record(Type.String(), Type.String(), {
          description: `metadata.labels; ${INSTANCE_ID_LABEL} names the instance on its Application; ${ORG_LABEL}, ${INSTANCE_NAME_LABEL} and ${APPLICATION_TIER_LABEL}=${PARENT_TIER} its parent.`,
        }),
      ),
      instanceSpec: Type.Optional(
        Nullable(Type.String({ maxLength: 65_536, description: `metadata.annotations["${INSTANCE_SPEC_ANNOTATION}"]: the spec the instance Application carries (null on a parent).` })),
      ),
      deletionTimestamp: Type.Optional(Nullable(Timestamp)),
    }),
    sync: Type.Object({
      status: Type.Union([Type.Literal('Synced'), Type.Literal('OutOfSync'), Type.Literal('Unknown')], { description: 'status.sync.status' }),
      revision: Nullable(Type.String({ description: 'status.sync.revision: the commit Argo CD compared against.' })),
    }),
    operation: Nullable(
      Type.Object({
        phase: Type.Union([Type.Literal('Running'), Type.Literal('Terminating'), Type.Literal('Failed'), Type.Literal('Error'), Type.Literal('Succeeded')], {
          description: 'status.operationState.phase',
        }),
        startedAt: Type.Optional(Nullable(Timestamp)),
        finishedAt: Nullable(Timestamp),
        syncResultRevision: Nullable(Type.String({ description: 'status.operationState.syncResult.revision' })),
        message: Type.Optional(Nullable(Type.String())),
      }),
    ),
    health: Type.Object({
      status: Type.String({ minLength: 1, description: 'status.health.status: Healthy, Progressing, Degraded, Suspended, Missing or Unknown.' }),
      message: Type.Optional(Nullable(Type.String())),
      observedAt: Nullable(
        Type.String({
          format: 'date-time',
          description: 'status.reconciledAt: when Argo CD last assessed the Application, health included. Health older than the sync is not trusted.',
        }),
      ),
    }),
    trigger: Type.Optional(Type.String({ description: 'The notification trigger that fired (informational).' })),
  },
  { additionalProperties: true },
);

export type ArgocdNotification = Static<typeof ArgocdNotificationSchema>;
