import { Type } from '@sinclair/typebox';
import { ConfigMap, LimitRange, Namespace, ResourceQuota, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Application, ApplicationSet, AppProject } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1';
import { createAjv } from '../../validation.ts';

/** A rendered object that Kubernetes or Argo CD would reject; terminal for the change. */
export class InvalidManifestError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'InvalidManifestError';
  }
}

interface Validatable {
  validate(): void;
}
type ModelConstructor = new (data: never) => Validatable;

const MODELS: Record<string, ModelConstructor> = {
  'v1/Namespace': Namespace,
  'v1/ResourceQuota': ResourceQuota,
  'v1/LimitRange': LimitRange,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'argoproj.io/v1alpha1/Application': Application,
  'argoproj.io/v1alpha1/ApplicationSet': ApplicationSet,
  'argoproj.io/v1alpha1/AppProject': AppProject,
};

// No maintained model of External Secrets matches the kubernetes-models version in use, so the
// fields the platform relies on are checked here.
const name = Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$' });
const externalSecretSchema = Type.Object({
  apiVersion: Type.Literal('external-secrets.io/v1'),
  kind: Type.Literal('ExternalSecret'),
  metadata: Type.Object({ name, namespace: Type.Optional(name) }),
  spec: Type.Object({
    refreshInterval: Type.Optional(Type.String()),
    secretStoreRef: Type.Object({ name, kind: Type.Union([Type.Literal('SecretStore'), Type.Literal('ClusterSecretStore')]) }),
    target: Type.Object({ name, creationPolicy: Type.Optional(Type.String()) }),
    data: Type.Array(
      Type.Object({ secretKey: Type.String({ minLength: 1 }), remoteRef: Type.Object({ key: Type.String({ minLength: 1 }), property: Type.Optional(Type.String()) }) }),
      { minItems: 1 },
    ),
  }),
});
const validateExternalSecret = createAjv({ useDefaults: false }).compile(externalSecretSchema);

/**
 * Validates one rendered object against the Kubernetes or Argo CD schema of its kind.
 * Unknown kinds are refused: a template may only produce what can be checked.
 */
export function validateManifest(object: unknown, file: string): void {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new InvalidManifestError(`${file}: not an object`);
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  const key = `${String(apiVersion)}/${String(kind)}`;
  if (key === 'external-secrets.io/v1/ExternalSecret') {
    if (!validateExternalSecret(object)) {
      throw new InvalidManifestError(`${file}: ExternalSecret ${validateExternalSecret.errors!.map((e) => `${e.instancePath} ${e.message}`).join('; ')}`);
    }
    return;
  }
  const Model = MODELS[key];
  if (!Model) throw new InvalidManifestError(`${file}: no schema for ${key}; templates may only render known kinds`);
  try {
    new Model(object as never).validate();
  } catch (error) {
    throw new InvalidManifestError(`${file}: ${key} is invalid: ${(error as Error).message}`);
  }
}
