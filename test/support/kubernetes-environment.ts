/**
 * A container's environment as the kubelet builds it, and a Secret as External Secrets writes
 * it: for the spec that starts the service from its rendered manifests. Each rule cites where
 * it is written; what the rendered manifests do not use is refused rather than approximated.
 */

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface ExternalSecretSpec {
  secretStoreRef: { kind: string; name: string };
  target: { name: string };
  data?: { secretKey: string; remoteRef: { key: string; property?: string } }[];
  dataFrom?: unknown[];
}

/** What a secret store holds: remote key → property → value (a Vault KV v2 entry per key). */
export type SecretStoreContents = Record<string, Record<string, string>>;

/**
 * The Secret ESO writes for `externalSecret` from `store`. ESO reads each `data` entry's
 * remoteRef (key, then property) and fails the whole sync, writing nothing, when one is missing
 * (external-secrets docs, "ExternalSecret": a `SecretSyncedError` condition); so does this.
 */
export function syncExternalSecret(externalSecret: KubernetesObject, store: SecretStoreContents): KubernetesObject & { data: Record<string, string> } {
  const spec = externalSecret.spec as ExternalSecretSpec;
  if (spec.dataFrom) throw new Error(`${externalSecret.metadata.name}: dataFrom is not modelled here`);
  const data: Record<string, string> = {};
  for (const entry of spec.data ?? []) {
    const remote = store[entry.remoteRef.key];
    if (!remote) throw new Error(`ExternalSecret ${externalSecret.metadata.name}: the store has no key ${entry.remoteRef.key} (ESO would write no Secret)`);
    if (entry.remoteRef.property === undefined) throw new Error(`ExternalSecret ${externalSecret.metadata.name}: ${entry.secretKey} names no property`);
    const value = remote[entry.remoteRef.property];
    if (value === undefined) throw new Error(`ExternalSecret ${externalSecret.metadata.name}: ${entry.remoteRef.key} has no property ${entry.remoteRef.property} (ESO would write no Secret)`);
    data[entry.secretKey] = value;
  }
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: spec.target.name, ...(externalSecret.metadata.namespace ? { namespace: externalSecret.metadata.namespace } : {}) }, data };
}

interface Container {
  name: string;
  envFrom?: { configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean }; prefix?: string }[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
}

// A C identifier, the rule for env names before Kubernetes 1.34 relaxed it: stricter on purpose.
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The environment of `containerName` in `deployment`, from `objects` (ConfigMaps and Secrets
 * of its namespace). Kubernetes docs, "Define container environment variables" and
 * "Configure a Pod to use a ConfigMap": envFrom sources in order, a key of a later source
 * replacing an earlier one's, then `env` entries over all of them; a missing non-optional
 * source keeps the container from starting. Secret values here are plain text (the kubelet
 * decodes `data`).
 */
export function containerEnvironment(deployment: KubernetesObject, containerName: string, objects: KubernetesObject[]): Record<string, string> {
  const podSpec = (deployment.spec as { template: { spec: { containers: Container[] } } }).template.spec;
  const container = podSpec.containers.find((c) => c.name === containerName);
  if (!container) throw new Error(`${deployment.metadata.name} has no container ${containerName}`);
  const namespace = deployment.metadata.namespace;
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const [kind, ref] = source.configMapRef ? ['ConfigMap', source.configMapRef] : source.secretRef ? ['Secret', source.secretRef] : [undefined, undefined];
    if (!kind || !ref) throw new Error(`${containerName}: an envFrom entry names neither a ConfigMap nor a Secret`);
    const object = find(kind, ref.name);
    if (!object) {
      if (ref.optional) continue;
      throw new Error(`${containerName}: ${kind} ${namespace}/${ref.name} does not exist (CreateContainerConfigError)`);
    }
    for (const [key, value] of Object.entries((object.data ?? {}) as Record<string, unknown>)) {
      const name = `${source.prefix ?? ''}${key}`;
      if (!ENV_NAME.test(name)) throw new Error(`${kind} ${ref.name}: ${name} is not an environment variable name`);
      if (typeof value !== 'string') throw new Error(`${kind} ${ref.name}: ${key} is not a string (the API server refuses it)`);
      env[name] = value;
    }
  }
  for (const entry of container.env ?? []) {
    if (entry.valueFrom !== undefined || entry.value === undefined) throw new Error(`${containerName}: env ${entry.name} uses valueFrom, which is not modelled here`);
    if (entry.value.includes('$(')) throw new Error(`${containerName}: env ${entry.name} uses $(VAR) expansion, which is not modelled here`);
    env[entry.name] = entry.value;
  }
  return env;
}
