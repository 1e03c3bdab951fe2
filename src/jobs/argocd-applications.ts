import { ApiException, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { ApplicationObservation } from '../domain/application-status.ts';
import { subjectOf } from '../domain/application-sync.ts';
import { INSTANCE_SPEC_ANNOTATION } from '../gitops/instance-spec.ts';
import { MANAGED_BY_SELECTOR } from '../gitops/labels.ts';

/** The parts of an argoproj.io/v1alpha1 Application this service reads. */
export interface ArgocdApplication {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string | null };
  status?: {
    sync?: { status?: string; revision?: string };
    health?: { status?: string; message?: string };
    reconciledAt?: string;
    operationState?: { phase?: string; startedAt?: string; finishedAt?: string; message?: string; syncResult?: { revision?: string } };
  };
}

/** Lists the Applications this service manages. */
export interface ApplicationLister {
  list(): Promise<ArgocdApplication[]>;
}

const PHASES = new Set(['Running', 'Terminating', 'Failed', 'Error', 'Succeeded']);
const SYNC_STATUSES = new Set(['Synced', 'OutOfSync', 'Unknown']);

/**
 * A kubeconfig from KUBECONFIG, or the pod's service account when running in a cluster;
 * undefined when there is neither (then there is no Application reconciler).
 */
export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig | undefined {
  const config = new KubeConfig();
  if (kubeconfigPath) {
    config.loadFromFile(kubeconfigPath);
    return config;
  }
  // Kubernetes sets this in every pod; loadFromCluster reads the service account from there.
  if (process.env.KUBERNETES_SERVICE_HOST) {
    config.loadFromCluster();
    return config;
  }
  return undefined;
}

export type ApplicationListFailure = 'forbidden' | 'unauthorized' | 'expired' | 'unavailable';

/** Why the Applications could not be listed, said so that an operator knows what to fix. */
export class ApplicationListError extends Error {
  readonly reason: ApplicationListFailure;
  readonly status: number | undefined;
  constructor(reason: ApplicationListFailure, status: number | undefined, message: string) {
    super(message);
    this.name = 'ApplicationListError';
    this.reason = reason;
    this.status = status;
  }
}

/** A list restarted this many times on 410 (continue token expired) gives up for this pass. */
const LIST_RESTARTS = 3;

/**
 * Lists Applications through the Kubernetes API (CustomObjectsApi), page by page. A continue
 * token that expired mid-list (410 Gone: "start a new list without the continue parameter",
 * Kubernetes API concepts, "Retrieving large results sets in chunks") restarts the list; a
 * refusal is an ApplicationListError naming what is missing.
 */
export function createKubernetesApplicationLister(config: KubeConfig, namespace: string, pageSize = 200): ApplicationLister {
  const api = config.makeApiClient(CustomObjectsApi);
  const page = (next: string | undefined) =>
    api.listNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace,
      plural: 'applications',
      labelSelector: MANAGED_BY_SELECTOR,
      limit: pageSize,
      _continue: next,
    }) as Promise<{ items?: ArgocdApplication[]; metadata?: { continue?: string } }>;
  return {
    async list() {
      for (let attempt = 0; ; attempt += 1) {
        const items: ArgocdApplication[] = [];
        let next: string | undefined;
        try {
          do {
            const result = await page(next);
            items.push(...(result.items ?? []));
            next = result.metadata?.continue || undefined;
          } while (next);
          return items;
        } catch (error) {
          const status = error instanceof ApiException ? error.code : undefined;
          if (status === 410 && next !== undefined && attempt < LIST_RESTARTS) continue;
          throw listError(error, status, namespace);
        }
      }
    },
  };
}

function listError(error: unknown, status: number | undefined, namespace: string): ApplicationListError {
  const detail = error instanceof Error ? error.message : String(error);
  switch (status) {
    case 403:
      return new ApplicationListError(
        'forbidden',
        status,
        `Kubernetes refused to list applications.argoproj.io in namespace ${namespace}: the service account needs a Role there with get, list and watch on applications (argoproj.io). ${detail}`,
      );
    case 401:
      return new ApplicationListError('unauthorized', status, `Kubernetes did not accept the service's credentials (kubeconfig or service account token). ${detail}`);
    case 410:
      return new ApplicationListError('expired', status, `The list of applications in ${namespace} kept expiring mid-way (${LIST_RESTARTS + 1} attempts); the next pass starts again. ${detail}`);
    default:
      return new ApplicationListError('unavailable', status, `Listing applications in ${namespace} failed${status ? ` (HTTP ${status})` : ''}. ${detail}`);
  }
}

export function observationFromApplication(app: ArgocdApplication): ApplicationObservation {
  const status = app.status ?? {};
  const operation = status.operationState;
  const sync = status.sync?.status ?? 'Unknown';
  return {
    application: app.metadata.name,
    subject: subjectOf(app.metadata.labels),
    spec: app.metadata.annotations?.[INSTANCE_SPEC_ANNOTATION] ?? null,
    syncStatus: SYNC_STATUSES.has(sync) ? (sync as ApplicationObservation['syncStatus']) : 'Unknown',
    syncRevision: status.sync?.revision ?? null,
    operation:
      operation?.phase && PHASES.has(operation.phase)
        ? {
            phase: operation.phase as NonNullable<ApplicationObservation['operation']>['phase'],
            startedAt: operation.startedAt ?? null,
            finishedAt: operation.finishedAt ?? null,
            revision: operation.syncResult?.revision ?? null,
            message: operation.message ?? null,
          }
        : null,
    healthStatus: status.health?.status ?? 'Unknown',
    healthMessage: status.health?.message ?? null,
    healthObservedAt: status.reconciledAt ?? null,
    deleting: Boolean(app.metadata.deletionTimestamp),
  };
}
