import { OPTIONAL_PLATFORM_COMPONENTS, type OptionalPlatformComponent, type PlatformBootstrap } from './change-payloads.ts';
import type { Variables } from './template-substitution.ts';

/** Where the control plane's secrets live in the store (a Vault KV entry, a property per key). */
export const CONTROL_PLANE_SECRET_KEY = 'cmp/control-plane';

/** The directory of platform/base/ that holds the root Application over all the others. */
export const PLATFORM_APPS_DIR = 'platform-apps';

interface SecretKey {
  secretKey: string;
  remoteRef: { key: string; property: string };
}

const fromStore = (secretKey: string, property: string): SecretKey => ({ secretKey, remoteRef: { key: CONTROL_PLANE_SECRET_KEY, property } });

/** What each rendered role needs from the payload, by the payload field's name. */
const NEEDS: Record<OptionalPlatformComponent, (keyof PlatformBootstrap)[]> = {
  sso: ['ssoHost'],
  vault: [],
  cms: ['cmsHost', 'cmsImage'],
  commerce: ['commerceHost'],
};

/** Whether templates/platform/<dir>/ is rendered: always, unless it is a role the site left out. */
export function rendersPlatformDir(payload: PlatformBootstrap, dir: string): boolean {
  return !(payload.without ?? []).includes(dir as OptionalPlatformComponent);
}

/**
 * Whether templates/platform/<dir>/<file> is rendered within its rendered directory: the
 * ExternalSecret of the Saleor app token only while the service talks to a Saleor.
 */
export function rendersPlatformFile(payload: PlatformBootstrap, dir: string, file: string): boolean {
  if (dir === 'cmp-control-plane' && file === SALEOR_SECRET_FILE) return saleorApiUrl(payload) !== undefined;
  return true;
}

/**
 * Payload fields that a rendered role defines itself, given anyway: the mirror's Keycloak with
 * sso rendered (the rendered realm holds the client), Saleor's URL with commerce rendered.
 */
export function contradictingPlatformSettings(payload: PlatformBootstrap): { component: OptionalPlatformComponent; field: keyof PlatformBootstrap }[] {
  const given: [OptionalPlatformComponent, keyof PlatformBootstrap][] = [
    ['sso', 'keycloak'],
    ['commerce', 'saleorApiUrl'],
  ];
  return given.filter(([component, field]) => rendersPlatformDir(payload, component) && payload[field] !== undefined).map(([component, field]) => ({ component, field }));
}

/** The confidential client of the rendered realm whose service account the membership mirror acts as. */
export const MEMBERSHIP_MIRROR_CLIENT_ID = 'cmp-membership-mirror';

/**
 * The variable of Keycloak's pod (from its ExternalSecret) that the realm import puts in as that
 * client's secret: Keycloak resolves `${NAME}` from the environment in a realm file it imports
 * at start (keycloak.org, "Importing and exporting realms", "Using Environment Variables within
 * the Realm Configuration Files"). Not KC_*: Keycloak reads those as its own options.
 */
export const MEMBERSHIP_MIRROR_SECRET_ENV = 'CMP_MEMBERSHIP_MIRROR_SECRET';

/** The Keycloak the membership mirror writes: the rendered one, or the site's (payload.keycloak); undefined: the mirror is off. */
export function membershipMirrorKeycloak(payload: PlatformBootstrap): { url: string; realm: string; clientId: string } | undefined {
  if (!rendersPlatformDir(payload, 'sso')) return payload.keycloak;
  return payload.ssoHost === undefined ? undefined : { url: `https://${payload.ssoHost}`, realm: KEYCLOAK_REALM, clientId: MEMBERSHIP_MIRROR_CLIENT_ID };
}

/** Saleor's GraphQL API (Saleor serves it at /graphql/): the rendered one, or the site's; undefined: top-ups are off. */
export function saleorApiUrl(payload: PlatformBootstrap): string | undefined {
  if (!rendersPlatformDir(payload, 'commerce')) return payload.saleorApiUrl;
  return payload.commerceHost === undefined ? undefined : `https://${payload.commerceHost}/graphql/`;
}

const SALEOR_SECRET_FILE = 'externalsecret-saleor.yaml';

/** The payload fields a rendered role needs and the payload lacks, e.g. `ssoHost` with sso rendered. */
export function missingPlatformSettings(payload: PlatformBootstrap): { component: OptionalPlatformComponent; field: keyof PlatformBootstrap }[] {
  return OPTIONAL_PLATFORM_COMPONENTS.filter((component) => rendersPlatformDir(payload, component)).flatMap((component) =>
    NEEDS[component].filter((field) => payload[field] === undefined).map((field) => ({ component, field })),
  );
}

/**
 * The variables of templates/platform/: the payload, and what follows from it. With a GitHub
 * App the ConfigMap names the App and the store holds its private key; without one the store
 * holds a token. A key listed here must be in the store, or ESO writes no Secret at all.
 */
export function platformVariables(payload: PlatformBootstrap): Variables {
  const app = payload.github.app;
  const keycloak = membershipMirrorKeycloak(payload);
  return {
    ...payload,
    // Undefined (the mirror off, top-ups off) drops the ConfigMap keys.
    keycloakUrl: keycloak?.url,
    keycloakRealm: keycloak?.realm,
    keycloakClientId: keycloak?.clientId,
    saleorApiUrl: saleorApiUrl(payload),
    // The config's default, written out so that the rendered ConfigMap says which GitHub it is.
    githubApiUrl: payload.github.apiUrl ?? 'https://api.github.com',
    // Undefined drops the ConfigMap key (template-substitution.ts).
    githubAppId: app?.appId,
    githubAppInstallationId: app ? String(app.installationId) : undefined,
    keycloakRealmJson: `${JSON.stringify(keycloakRealm(payload), null, 2)}\n`,
    controlPlaneSecretData: [
      fromStore('DATABASE_URL', 'database-url'),
      app ? fromStore('GITHUB_APP_PRIVATE_KEY', 'github-app-private-key') : fromStore('GITHUB_TOKEN', 'github-token'),
      fromStore('GITHUB_WEBHOOK_SECRET', 'github-webhook-secret'),
      fromStore('ARGOCD_WEBHOOK_TOKEN', 'argocd-webhook-token'),
      // With KEYCLOAK_URL the service refuses to start without it (src/config.ts), so it is here, not optional.
      ...(keycloak ? [fromStore('KEYCLOAK_CLIENT_SECRET', 'keycloak-client-secret')] : []),
    ],
    // A Secret of its own, optional in the Deployment: the Saleor app and its token exist only
    // once Saleor runs, after the control plane (PLATFORM_SYNC_WAVES).
    saleorSecretData: [fromStore('SALEOR_APP_TOKEN', 'saleor-app-token')],
  };
}

/** The realm Keycloak imports (templates/platform/sso/configmap-keycloak-realm.yaml says why each part). */
export const KEYCLOAK_REALM = 'gsv';

/**
 * The realm-management roles the mirror's service account needs (README "Keycloak follows
 * membership"): groups made and read, members joined and left.
 */
export const MEMBERSHIP_MIRROR_ROLES = ['manage-users', 'view-users', 'query-groups'];

function keycloakRealm(payload: PlatformBootstrap): Record<string, unknown> {
  return {
    realm: KEYCLOAK_REALM,
    enabled: true,
    roles: { realm: [{ name: 'platform-admin', description: 'Platform admin of the control plane (OIDC_ADMIN_ROLE)' }] },
    // The mirror's service account, as Keycloak exports one: a user linked to its client by
    // serviceAccountClientId (RepresentationToModel.createUser links it by clientId, and fails
    // the import if no such client is in the file), with realm-management's client roles.
    // Keycloak's ClientRepresentation has no serviceAccountClientRoles: that field belongs to
    // keycloak-config-cli and operators, and Keycloak's own import would not read it.
    users: [
      {
        username: `service-account-${MEMBERSHIP_MIRROR_CLIENT_ID}`,
        enabled: true,
        serviceAccountClientId: MEMBERSHIP_MIRROR_CLIENT_ID,
        clientRoles: { 'realm-management': MEMBERSHIP_MIRROR_ROLES },
      },
    ],
    clients: [
      {
        clientId: payload.oidc.audience,
        name: 'control-plane',
        enabled: true,
        publicClient: true,
        standardFlowEnabled: true,
        directAccessGrantsEnabled: false,
        redirectUris: [`https://${payload.host}/*`],
        webOrigins: [`https://${payload.host}`],
        protocolMappers: [
          {
            name: 'control-plane-audience',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-audience-mapper',
            config: { 'included.client.audience': payload.oidc.audience, 'access.token.claim': 'true', 'id.token.claim': 'false' },
          },
          // The claim the tenant RoleBindings match: `/orgs/<org>` needs the full group path
          // (GroupMembershipMapper: "full.path" exactly "true"; the claim's name is "claim.name").
          {
            name: 'groups',
            protocol: 'openid-connect',
            protocolMapper: 'oidc-group-membership-mapper',
            config: { 'claim.name': 'groups', 'full.path': 'true', 'access.token.claim': 'true', 'id.token.claim': 'true', 'userinfo.token.claim': 'true' },
          },
        ],
      },
      // The membership mirror's client: confidential, client credentials only (no user signs in
      // with it); its secret is the store's, put in at import from Keycloak's environment.
      {
        clientId: MEMBERSHIP_MIRROR_CLIENT_ID,
        name: 'control-plane membership mirror',
        enabled: true,
        publicClient: false,
        clientAuthenticatorType: 'client-secret',
        secret: `\${${MEMBERSHIP_MIRROR_SECRET_ENV}}`,
        serviceAccountsEnabled: true,
        standardFlowEnabled: false,
        implicitFlowEnabled: false,
        directAccessGrantsEnabled: false,
      },
    ],
  };
}

/** The first sync's order of platform/base/<dir> (platform-application.yaml says why); later roles wait for earlier ones. */
export const PLATFORM_SYNC_WAVES: Record<string, number> = { vault: 0, sso: 1, 'cmp-control-plane': 2, 'argocd-tenants': 2, cms: 3, commerce: 3 };

/**
 * Sync options of the Application over platform/base/<dir>. argocd-tenants applies a partial
 * of Argo CD's own argocd-notifications-cm by server-side apply; where Argo CD was installed
 * with client-side kubectl apply (its documented install), the migration to server-side apply
 * would hand the install's keys to our field manager and the partial would then drop them
 * (templates/platform/argocd-tenants/configmap-argocd-notifications.yaml says where that is written).
 */
export const PLATFORM_SYNC_OPTIONS: Record<string, string[]> = { 'argocd-tenants': ['ClientSideApplyMigration=false'] };
