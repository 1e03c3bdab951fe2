// The label keys this service writes on the objects it commits and reads back from Argo CD.
// Each key is spelled here once; renderers, receivers and reconcilers import it.

/** On every object the service renders (architecture: "Every object carries labels"). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'control-plane';
/** The tenant organization's slug, on every object of a tenant. */
export const ORG_LABEL = 'gsv.io/org';
export const PROJECT_LABEL = 'gsv.io/project';
/** The instance's id, on an instance's objects: how an Argo CD Application names its instance. */
export const INSTANCE_ID_LABEL = 'gsv.io/instance-id';
export const OFFERING_LABEL = 'gsv.io/offering';
export const OFFERING_VERSION_LABEL = 'gsv.io/offering-version';

export const MANAGED_BY_LABELS = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } as const;
/** A Kubernetes label selector for everything this service manages. */
export const MANAGED_BY_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
