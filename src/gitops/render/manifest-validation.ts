import { Type } from '@sinclair/typebox';
import { ConfigMap, LimitRange, Namespace, ResourceQuota, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Application, ApplicationSet, AppProject } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1';
import { createAjv, type ValidateFunction } from '../../validation.ts';

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
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
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
// fields the platform relies on are checked here: an ExternalSecret reads either a store (`data`)
// or ESO generators (`dataFrom` with generatorRef, as an offering's generated credentials do).
const name = Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$' });
const metadata = Type.Object({ name, namespace: Type.Optional(name) });
const target = Type.Object({ name, creationPolicy: Type.Optional(Type.String()) });
const GENERATORS_API = 'generators.external-secrets.io/v1alpha1';
const externalSecretSchema = Type.Object({
  apiVersion: Type.Literal('external-secrets.io/v1'),
  kind: Type.Literal('ExternalSecret'),
  metadata,
  spec: Type.Union([
    Type.Object({
      refreshInterval: Type.Optional(Type.String()),
      secretStoreRef: Type.Object({ name, kind: Type.Union([Type.Literal('SecretStore'), Type.Literal('ClusterSecretStore')]) }),
      target,
      data: Type.Array(
        Type.Object({ secretKey: Type.String({ minLength: 1 }), remoteRef: Type.Object({ key: Type.String({ minLength: 1 }), property: Type.Optional(Type.String()) }) }),
        { minItems: 1 },
      ),
    }),
    Type.Object({
      refreshInterval: Type.Optional(Type.String()),
      target,
      dataFrom: Type.Array(
        Type.Object({
          sourceRef: Type.Object({ generatorRef: Type.Object({ apiVersion: Type.Literal(GENERATORS_API), kind: Type.Literal('Password'), name }) }),
          rewrite: Type.Optional(Type.Array(Type.Object({ regexp: Type.Object({ source: Type.String({ minLength: 1 }), target: Type.String({ minLength: 1 }) }) }))),
        }),
        { minItems: 1 },
      ),
    }),
  ]),
});
// ESO's Password generator (docs: api/generator/password): lengths below 16 are refused here.
const passwordSchema = Type.Object({
  apiVersion: Type.Literal(GENERATORS_API),
  kind: Type.Literal('Password'),
  metadata,
  spec: Type.Object(
    {
      length: Type.Integer({ minimum: 16 }),
      digits: Type.Optional(Type.Integer({ minimum: 0 })),
      symbols: Type.Optional(Type.Integer({ minimum: 0 })),
      symbolCharacters: Type.Optional(Type.String()),
      noUpper: Type.Optional(Type.Boolean()),
      allowRepeat: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
});
const ajv = createAjv({ useDefaults: false });
const CUSTOM: Record<string, ValidateFunction> = {
  'external-secrets.io/v1/ExternalSecret': ajv.compile(externalSecretSchema),
  [`${GENERATORS_API}/Password`]: ajv.compile(passwordSchema),
};

/**
 * Validates one rendered object against the Kubernetes or Argo CD schema of its kind.
 * Unknown kinds are refused: a template may only produce what can be checked.
 */
export function validateManifest(object: unknown, file: string): void {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new InvalidManifestError(`${file}: not an object`);
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  const key = `${String(apiVersion)}/${String(kind)}`;
  const custom = CUSTOM[key];
  if (custom) {
    if (!custom(object)) throw new InvalidManifestError(`${file}: ${String(kind)} ${custom.errors!.map((e) => `${e.instancePath} ${e.message}`).join('; ')}`);
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
