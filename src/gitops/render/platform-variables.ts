import type { PlatformBootstrap } from './change-payloads.ts';
import type { Variables } from './template-substitution.ts';

/** Where the control plane's secrets live in the store (a Vault KV entry, a property per key). */
export const CONTROL_PLANE_SECRET_KEY = 'cmp/control-plane';

interface SecretKey {
  secretKey: string;
  remoteRef: { key: string; property: string };
}

const fromStore = (secretKey: string, property: string): SecretKey => ({ secretKey, remoteRef: { key: CONTROL_PLANE_SECRET_KEY, property } });

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
    controlPlaneSecretData: [
      fromStore('DATABASE_URL', 'database-url'),
      app ? fromStore('GITHUB_APP_PRIVATE_KEY', 'github-app-private-key') : fromStore('GITHUB_TOKEN', 'github-token'),
      fromStore('GITHUB_WEBHOOK_SECRET', 'github-webhook-secret'),
      fromStore('ARGOCD_WEBHOOK_TOKEN', 'argocd-webhook-token'),
    ],
  };
}
