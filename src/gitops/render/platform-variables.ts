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
  return {
    ...payload,
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
    ],
  };
}

/** The realm Keycloak imports (templates/platform/sso/configmap-keycloak-realm.yaml says why each part). */
export const KEYCLOAK_REALM = 'gsv';

function keycloakRealm(payload: PlatformBootstrap): Record<string, unknown> {
  return {
    realm: KEYCLOAK_REALM,
    enabled: true,
    roles: { realm: [{ name: 'platform-admin', description: 'Platform admin of the control plane (OIDC_ADMIN_ROLE)' }] },
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
        ],
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
