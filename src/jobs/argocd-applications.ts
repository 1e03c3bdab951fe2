import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { ApplicationObservation } from '../domain/application-status.ts';
import { INSTANCE_ID_LABEL, MANAGED_BY_SELECTOR } from '../gitops/labels.ts';

/** The parts of an argoproj.io/v1alpha1 Application this service reads. */
export interface ArgocdApplication {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; deletionTimestamp?: string | null };
  status?: {
    sync?: { status?: string; revision?: string };
    health?: { status?: string; message?: string };
    reconciledAt?: string;
    operationState?: { phase?: string; finishedAt?: string; message?: string; syncResult?: { revision?: string } };
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

/** Lists Applications through the Kubernetes API (CustomObjectsApi), page by page. */
export function createKubernetesApplicationLister(config: KubeConfig, namespace: string, pageSize = 200): ApplicationLister {
  const api = config.makeApiClient(CustomObjectsApi);
  return {
    async list() {
      const items: ArgocdApplication[] = [];
      let next: string | undefined;
      do {
        const page = (await api.listNamespacedCustomObject({
          group: 'argoproj.io',
          version: 'v1alpha1',
          namespace,
          plural: 'applications',
          labelSelector: MANAGED_BY_SELECTOR,
          limit: pageSize,
          _continue: next,
        })) as { items?: ArgocdApplication[]; metadata?: { continue?: string } };
        items.push(...(page.items ?? []));
        next = page.metadata?.continue || undefined;
      } while (next);
      return items;
    },
  };
}

/** The same observation a notification carries, read from the Application object. */
export function observationFromApplication(app: ArgocdApplication): ApplicationObservation {
  const status = app.status ?? {};
  const operation = status.operationState;
  const sync = status.sync?.status ?? 'Unknown';
  return {
    application: app.metadata.name,
    instanceId: app.metadata.labels?.[INSTANCE_ID_LABEL],
    syncStatus: SYNC_STATUSES.has(sync) ? (sync as ApplicationObservation['syncStatus']) : 'Unknown',
    syncRevision: status.sync?.revision ?? null,
    operation:
      operation?.phase && PHASES.has(operation.phase)
        ? {
            phase: operation.phase as NonNullable<ApplicationObservation['operation']>['phase'],
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
