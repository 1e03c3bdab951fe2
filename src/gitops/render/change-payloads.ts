import { Type, type Static } from '@sinclair/typebox';
import { createAjv, toFieldErrors } from '../../validation.ts';
import { slugSchema } from '../tenant-paths.ts';

/**
 * The payloads of change_requests, as the API writes them. The worker validates them again at
 * its edge: a payload that does not match is a terminal error on that change.
 */
const org = slugSchema('org');
const project = slugSchema('project');
const instanceName = slugSchema('instanceName');
const offering = slugSchema('offering');
const role = slugSchema('role');
const version = Type.String({ pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$' });
const templatePath = Type.String({ pattern: '^templates/offerings/[a-z0-9-]+/[0-9A-Za-z.+-]+$' });

export const WorkspaceCreatePayload = Type.Object({
  org,
  orgName: Type.String({ minLength: 1, maxLength: 200 }),
  keycloakGroup: Type.String({ minLength: 1, maxLength: 255 }),
});

export const InstanceWritePayload = Type.Object({
  org,
  project,
  instanceName,
  offering,
  role,
  version,
  templatePath,
  parameters: Type.Record(Type.String(), Type.Unknown()),
});

/**
 * An update also names the version the instance's directory holds now, so the renderer can
 * remove that version's files the new one lacks. Optional: updates queued before it existed
 * (and instances with nothing merged yet) replace the whole directory instead.
 */
export const InstanceUpdatePayload = Type.Object({
  ...InstanceWritePayload.properties,
  previousTemplatePath: Type.Optional(templatePath),
  /**
   * What main held when the update was asked for, so that its commit can say what changes; the
   * names of parameters whose values must not appear in a commit message (`writeOnly` in the
   * version's parameters schema). Optional: updates queued before it existed say nothing.
   */
  previous: Type.Optional(
    Type.Object(
      { version, parameters: Type.Record(Type.String(), Type.Unknown()), sensitive: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 200 }) },
      { additionalProperties: false },
    ),
  ),
});

export const InstanceDeletePayload = Type.Object({
  org,
  project,
  instanceName,
  offering,
  role,
});

const httpUrl = Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2000 });
const hostName = Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$' });
const imageName = Type.String({ minLength: 1, maxLength: 500, pattern: '^[a-z0-9./:@_-]+$' });

/**
 * The platform roles beside the control plane (templates/platform/<role>/): sso (Keycloak),
 * vault (Vault, External Secrets and the ClusterSecretStore), cms (Wagtail), commerce (Saleor).
 * A site that already has one leaves it out (bootstrap --without).
 */
export const OPTIONAL_PLATFORM_COMPONENTS = ['sso', 'vault', 'cms', 'commerce'] as const;
export type OptionalPlatformComponent = (typeof OPTIONAL_PLATFORM_COMPONENTS)[number];

/**
 * What `npm run bootstrap` proposes: the service's own deployment and the tenant pickup. Every
 * setting the service needs in a cluster comes from here or from the secret store, never from a
 * hand edit of the rendered manifests (test/platform/rendered-control-plane-start.spec.ts).
 */
export const PlatformBootstrapPayload = Type.Object({
  image: Type.String({ minLength: 1, pattern: '^[a-z0-9./:@_-]+$' }),
  host: Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$' }),
  gitopsRepoURL: Type.String({ minLength: 1 }),
  baseBranch: Type.String({ pattern: '^[A-Za-z0-9._/-]{1,200}$' }),
  /** The service's URL as Argo CD Notifications reaches it (in-cluster). */
  notificationsUrl: Type.String({ pattern: '^https?://' }),
  /** Name of the ClusterSecretStore the ExternalSecrets read from. */
  secretStore: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$' }),
  /** The deployed service's GitHub driver: the repository, the API, and App or token (the token or key itself is in the store). */
  github: Type.Object(
    {
      repository: Type.String({ pattern: '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$' }),
      apiUrl: Type.Optional(httpUrl),
      app: Type.Optional(Type.Object({ appId: Type.String({ pattern: '^[0-9]{1,20}$' }), installationId: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })),
    },
    { additionalProperties: false },
  ),
  /** Who signs the users' JWTs (Keycloak's realm): OIDC_ISSUER, OIDC_AUDIENCE, OIDC_JWKS_URL. */
  oidc: Type.Object({ issuer: httpUrl, audience: Type.String({ minLength: 1, maxLength: 255 }), jwksUrl: httpUrl }, { additionalProperties: false }),
  /** Roles not to render; absent: all of them. */
  without: Type.Optional(Type.Array(Type.Union(OPTIONAL_PLATFORM_COMPONENTS.map((c) => Type.Literal(c))), { uniqueItems: true, maxItems: OPTIONAL_PLATFORM_COMPONENTS.length })),
  /** Public host names of the rendered roles, and the site's Wagtail image (Wagtail ships none). */
  ssoHost: Type.Optional(hostName),
  cmsHost: Type.Optional(hostName),
  cmsImage: Type.Optional(imageName),
  commerceHost: Type.Optional(hostName),
  /**
   * With sso left out: the site's Keycloak that the membership mirror writes (KEYCLOAK_URL,
   * KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID; the client's secret is in the store). Absent there, the
   * mirror stays off; with sso rendered, the rendered realm defines them and this is refused.
   */
  keycloak: Type.Optional(
    Type.Object(
      { url: httpUrl, realm: Type.String({ pattern: '^[A-Za-z0-9._-]{1,255}$' }), clientId: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,255}$' }) },
      { additionalProperties: false },
    ),
  ),
  /** With commerce left out: the site's Saleor GraphQL API (SALEOR_API_URL); absent there, top-ups stay off. Refused with commerce rendered. */
  saleorApiUrl: Type.Optional(Type.String({ pattern: '^https?://[^/\\s]+/[^\\s]*$', maxLength: 2000 })),
});

/**
 * Moves orgs from the flat layout (tenants/<org>/) to the bucketed one (tenant-paths.ts): what
 * main holds under each org's flat directory when the change is published, file for file.
 */
export const TenantRelayoutPayload = Type.Object(
  { orgs: Type.Array(org, { minItems: 1, maxItems: 100_000, uniqueItems: true }) },
  { additionalProperties: false },
);

export type WorkspaceCreate = Static<typeof WorkspaceCreatePayload>;
export type TenantRelayout = Static<typeof TenantRelayoutPayload>;
export type InstanceWrite = Static<typeof InstanceWritePayload>;
export type InstanceUpdate = Static<typeof InstanceUpdatePayload>;
export type InstanceDelete = Static<typeof InstanceDeletePayload>;
export type PlatformBootstrap = Static<typeof PlatformBootstrapPayload>;


/** The kinds of change, one per payload below (domain/changes/change-kinds.ts names them for the rest). */
export const CHANGE_KINDS = ['workspace.create', 'instance.create', 'instance.update', 'instance.delete', 'platform.bootstrap', 'tenants.relayout'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export type ParsedChange =
  | { kind: 'workspace.create'; payload: WorkspaceCreate }
  | { kind: 'instance.create'; payload: InstanceWrite }
  | { kind: 'instance.update'; payload: InstanceUpdate }
  | { kind: 'instance.delete'; payload: InstanceDelete }
  | { kind: 'platform.bootstrap'; payload: PlatformBootstrap }
  | { kind: 'tenants.relayout'; payload: TenantRelayout };

export class InvalidPayloadError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'InvalidPayloadError';
  }
}

const ajv = createAjv({ useDefaults: false });
const validators = {
  'workspace.create': ajv.compile(WorkspaceCreatePayload),
  'instance.create': ajv.compile(InstanceWritePayload),
  'instance.update': ajv.compile(InstanceUpdatePayload),
  'instance.delete': ajv.compile(InstanceDeletePayload),
  'platform.bootstrap': ajv.compile(PlatformBootstrapPayload),
  'tenants.relayout': ajv.compile(TenantRelayoutPayload),
};

export function parseChange(kind: ChangeKind, payload: unknown): ParsedChange {
  const validate = validators[kind];
  if (!validate) throw new InvalidPayloadError(`unknown change kind ${String(kind)}`);
  if (!validate(payload)) {
    const problems = toFieldErrors('body', validate.errors).map((e) => `${e.pointer || '/'} ${e.message}`);
    throw new InvalidPayloadError(`${kind} payload is invalid: ${problems.join('; ')}`);
  }
  return { kind, payload } as ParsedChange;
}
