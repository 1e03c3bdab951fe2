import fs from 'node:fs';
import path from 'node:path';
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

// An ExternalSecret matches External Secrets' CRD schema (CRD_SCHEMAS below) and, on top, the
// narrower shape the platform relies on: it reads either a store (`data`) or ESO generators
// (`dataFrom` with generatorRef, as an offering's generated credentials do).
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
 * External Secrets' own schemas: the openAPIV3Schema of its CRDs, copied unchanged into
 * crd-schemas/ (each file's $comment says from where). Stricter than the API server in one
 * way: a field the schema does not declare is an error here, where Kubernetes would prune it
 * in silence (a misspelt field is a setting that never takes effect). CEL rules
 * (x-kubernetes-validations) are not evaluated.
 */
const CRD_SCHEMAS: Record<string, string> = {
  'external-secrets.io/v1/ExternalSecret': 'external-secrets.io-v1-externalsecret.json',
  'external-secrets.io/v1/ClusterSecretStore': 'external-secrets.io-v1-clustersecretstore.json',
};
const crdValidators = new Map<string, ValidateFunction>();

function crdValidator(key: string): ValidateFunction | undefined {
  const file = CRD_SCHEMAS[key];
  if (!file) return undefined;
  let validate = crdValidators.get(key);
  if (!validate) {
    const schema = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'crd-schemas', file), 'utf8')) as Record<string, unknown>;
    validate = ajv.compile(closeObjects(schema) as Record<string, unknown>);
    crdValidators.set(key, validate);
  }
  return validate;
}

/** Declared properties only, wherever the schema neither allows more nor preserves unknown fields. */
function closeObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeObjects);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = key === 'properties' ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, closeObjects(v)])) : closeObjects(value);
  if (out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) out.additionalProperties = false;
  return out;
}

function describeErrors(errors: ValidateFunction['errors']): string {
  return (errors ?? []).map((e) => `${e.instancePath} ${e.message}${typeof e.params.additionalProperty === 'string' ? ` (${e.params.additionalProperty})` : ''}`).join('; ');
}

/**
 * Validates one rendered object against the Kubernetes or Argo CD schema of its kind.
 * Unknown kinds are refused: a template may only produce what can be checked.
 */
export function validateManifest(object: unknown, file: string): void {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new InvalidManifestError(`${file}: not an object`);
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  const key = `${String(apiVersion)}/${String(kind)}`;
  const crd = crdValidator(key);
  if (crd && !crd(object)) throw new InvalidManifestError(`${file}: ${String(kind)} does not match External Secrets' schema: ${describeErrors(crd.errors)}`);
  const custom = CUSTOM[key];
  if (crd && !custom) return;
  if (custom) {
    if (!custom(object)) throw new InvalidManifestError(`${file}: ${String(kind)} ${describeErrors(custom.errors)}`);
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
