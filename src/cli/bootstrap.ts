import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { EX_CONFIG, EX_UNAVAILABLE, EX_USAGE, failer, readConfig, shown } from './cli-support.ts';
import { createLogger } from '../logger.ts';
import { createSequelize } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { InvalidPayloadError, OPTIONAL_PLATFORM_COMPONENTS, parseChange, type OptionalPlatformComponent, type PlatformBootstrap } from '../gitops/render/change-payloads.ts';
import { KEYCLOAK_REALM, missingPlatformSettings } from '../gitops/render/platform-variables.ts';
import { proposePlatformBootstrap } from '../domain/platform-bootstrap.ts';

// `npm run bootstrap -- --image … --host … …`: proposes templates/platform/ as a
// platform.bootstrap change through the same domain function as POST /platform/bootstrap.

const USAGE = `usage: npm run bootstrap -- --image IMAGE --host HOST --notifications-url URL --secret-store NAME
                              [--gitops-repo-url URL] [--base-branch BRANCH] [--requested-by WHO]
                              [--github-repository OWNER/NAME] [--github-api-url URL]
                              [--github-app-id ID --github-app-installation-id ID]
                              [--oidc-issuer URL] [--oidc-audience AUD] [--oidc-jwks-url URL]
                              [--sso-host HOST] [--cms-host HOST --cms-image IMAGE] [--commerce-host HOST]
                              [--without sso,vault,cms,commerce]
                              [--keycloak-url URL --keycloak-realm REALM --keycloak-client-id ID]
                              [--saleor-api-url URL]

  --image              control plane image, e.g. ghcr.io/gsv/control-plane:0.1.0
  --host               public host name of the control plane's Ingress
  --notifications-url  the service's URL as Argo CD Notifications reaches it (in-cluster)
  --secret-store       ClusterSecretStore the ExternalSecrets read from
  --gitops-repo-url    the GitOps repository as Argo CD clones it
                       (default with GITOPS_DRIVER=github: https://github.com/GITHUB_REPOSITORY.git)
  --base-branch        branch Argo CD watches (default: GITOPS_BASE_BRANCH)
  --requested-by       recorded on the change (default: cli:<user>)

The deployed service's settings (rendered into its ConfigMap; secrets stay in the store):
  --github-repository  the GitOps repository as owner/name (default: GITHUB_REPOSITORY)
  --github-api-url     GitHub Enterprise's API (default: GITHUB_API_URL, else https://api.github.com)
  --github-app-id, --github-app-installation-id
                       authenticate as this GitHub App (its key: github-app-private-key in the
                       store); without them, a token (github-token in the store). Default: the
                       App of this environment, if it uses one
  --oidc-issuer        issuer of the users' JWTs, the Keycloak realm URL (default: OIDC_ISSUER,
                       else https://<sso host>/realms/gsv when Keycloak is rendered)
  --oidc-audience      audience they must carry (default: OIDC_AUDIENCE, else control-plane)
  --oidc-jwks-url      the realm's keys (default: OIDC_JWKS_URL, else
                       <issuer>/protocol/openid-connect/certs)

The platform's other roles, each rendered unless left out:
  --sso-host           public host of Keycloak (sso)
  --cms-host, --cms-image
                       public host of Wagtail (cms) and the site's Wagtail image (Wagtail ships none)
  --commerce-host      public host of Saleor's API (commerce)
  --without            roles the site already has or does not want, comma-separated: sso
                       (an existing Keycloak: give --oidc-issuer), vault (an existing store:
                       give its ClusterSecretStore as --secret-store), cms, commerce

With a role left out, what the service reads from the site's own (otherwise the rendered role's):
  --keycloak-url, --keycloak-realm, --keycloak-client-id
                       with --without sso: the site's Keycloak that the membership mirror
                       writes, and its confidential client (its secret: keycloak-client-secret
                       in the store). Without them the mirror is off
  --saleor-api-url     with --without commerce: the site's Saleor GraphQL API, e.g.
                       https://shop.example.org/graphql/ (the app token: saleor-app-token in the
                       store). Without it Saleor top-ups are off

It connects to the service's database (DATABASE_URL and the rest of the service's environment),
applies pending migrations, and queues the change; a running service's change worker opens it.
Running it again while that change is pending or open prints the same change.
`;

// Annotated, so that TypeScript narrows after a call that never returns.
const fail: (code: number, message: string, withUsage?: boolean) => never = failer('bootstrap', USAGE);

function readOptions() {
  try {
    return parseArgs({
      options: {
        image: { type: 'string' },
        host: { type: 'string' },
        'notifications-url': { type: 'string' },
        'secret-store': { type: 'string' },
        'gitops-repo-url': { type: 'string' },
        'base-branch': { type: 'string' },
        'requested-by': { type: 'string' },
        'github-repository': { type: 'string' },
        'github-api-url': { type: 'string' },
        'github-app-id': { type: 'string' },
        'github-app-installation-id': { type: 'string' },
        'oidc-issuer': { type: 'string' },
        'oidc-audience': { type: 'string' },
        'oidc-jwks-url': { type: 'string' },
        'sso-host': { type: 'string' },
        'cms-host': { type: 'string' },
        'cms-image': { type: 'string' },
        'commerce-host': { type: 'string' },
        without: { type: 'string' },
        'keycloak-url': { type: 'string' },
        'keycloak-realm': { type: 'string' },
        'keycloak-client-id': { type: 'string' },
        'saleor-api-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return fail(EX_USAGE, (error as Error).message, true);
  }
}

function defaultRepoUrl(config: Config): string | undefined {
  const github = config.gitops.github;
  return github && new URL(github.apiUrl).host === 'api.github.com' ? `https://github.com/${github.owner}/${github.repo}.git` : undefined;
}

const options = readOptions();
if (options.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const config = readConfig(fail);
if (!config.databaseUrl) {
  fail(
    EX_CONFIG,
    'DATABASE_URL is not set: bootstrap writes to the database of the service that publishes the change. ' +
      'Set DATABASE_URL (and the service\'s other variables) as the service has them; with the embedded default (npm start), ' +
      'call POST /platform/bootstrap with the development token instead.',
  );
}
const gitopsRepoURL = options['gitops-repo-url'] ?? defaultRepoUrl(config);
const github = config.gitops.github;
const githubRepository = options['github-repository'] ?? (github ? `${github.owner}/${github.repo}` : undefined);
const githubApiUrl = options['github-api-url'] ?? (github && github.apiUrl !== 'https://api.github.com' ? github.apiUrl : undefined);
const envApp = github && 'appId' in github.auth ? github.auth : undefined;
const appId = options['github-app-id'] ?? envApp?.appId;
const installationId = options['github-app-installation-id'] ?? (envApp ? String(envApp.installationId) : undefined);
if ((appId === undefined) !== (installationId === undefined)) fail(EX_USAGE, '--github-app-id and --github-app-installation-id go together', true);
const without = options.without === undefined ? [] : options.without.split(',').map((role) => role.trim());
const unknownRoles = without.filter((role) => !(OPTIONAL_PLATFORM_COMPONENTS as readonly string[]).includes(role));
if (unknownRoles.length > 0) fail(EX_USAGE, `--without ${unknownRoles.join(',')}: the roles are ${OPTIONAL_PLATFORM_COMPONENTS.join(', ')}`, true);
const ssoHost = options['sso-host'];
const renderedSso = !without.includes('sso');
const oidcIssuer = options['oidc-issuer'] ?? config.oidc?.issuer ?? (renderedSso && ssoHost ? `https://${ssoHost}/realms/${KEYCLOAK_REALM}` : undefined);
const keycloakFlags = (['keycloak-url', 'keycloak-realm', 'keycloak-client-id'] as const).filter((name) => options[name] !== undefined);
if (keycloakFlags.length > 0 && keycloakFlags.length < 3) fail(EX_USAGE, '--keycloak-url, --keycloak-realm and --keycloak-client-id go together', true);
if (keycloakFlags.length > 0 && renderedSso) fail(EX_USAGE, "--keycloak-url is for a site's own Keycloak (--without sso): the rendered realm defines the mirror's client", true);
if (options['saleor-api-url'] !== undefined && !without.includes('commerce')) fail(EX_USAGE, "--saleor-api-url is for a site's own Saleor (--without commerce): the rendered Saleor's URL follows from --commerce-host", true);
const missing: string[] = (['image', 'host', 'notifications-url', 'secret-store'] as const).filter((name) => !options[name]);
if (!gitopsRepoURL) missing.push('gitops-repo-url');
if (!githubRepository) missing.push('github-repository');
if (!oidcIssuer) missing.push('oidc-issuer');
if (missing.length > 0) fail(EX_USAGE, `missing ${missing.map((m) => `--${m}`).join(', ')}`, true);

const payload: PlatformBootstrap = {
  image: options.image!,
  host: options.host!,
  gitopsRepoURL: gitopsRepoURL!,
  baseBranch: options['base-branch'] ?? config.gitops.baseBranch,
  notificationsUrl: options['notifications-url']!,
  secretStore: options['secret-store']!,
  github: {
    repository: githubRepository!,
    ...(githubApiUrl ? { apiUrl: githubApiUrl } : {}),
    ...(appId !== undefined ? { app: { appId, installationId: Number(installationId) } } : {}),
  },
  ...(without.length > 0 ? { without: without as OptionalPlatformComponent[] } : {}),
  ...(ssoHost ? { ssoHost } : {}),
  ...(options['cms-host'] ? { cmsHost: options['cms-host'] } : {}),
  ...(options['cms-image'] ? { cmsImage: options['cms-image'] } : {}),
  ...(options['commerce-host'] ? { commerceHost: options['commerce-host'] } : {}),
  ...(keycloakFlags.length === 3 ? { keycloak: { url: options['keycloak-url']!, realm: options['keycloak-realm']!, clientId: options['keycloak-client-id']! } } : {}),
  ...(options['saleor-api-url'] !== undefined ? { saleorApiUrl: options['saleor-api-url'] } : {}),
  oidc: {
    issuer: oidcIssuer!,
    audience: options['oidc-audience'] ?? config.oidc?.audience ?? 'control-plane',
    jwksUrl: options['oidc-jwks-url'] ?? (options['oidc-issuer'] ? undefined : config.oidc?.jwksUrl) ?? `${oidcIssuer!.replace(/\/+$/, '')}/protocol/openid-connect/certs`,
  },
};
const unset = missingPlatformSettings(payload);
if (unset.length > 0) {
  const flag = (field: string) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  fail(EX_USAGE, unset.map((m) => `${m.component} is rendered: give ${flag(m.field)}, or --without ${m.component}`).join('; '), true);
}
try {
  parseChange('platform.bootstrap', payload);
} catch (error) {
  if (error instanceof InvalidPayloadError) fail(EX_USAGE, error.message, true);
  throw error;
}

const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
const sequelize = createSequelize({ url: config.databaseUrl, poolMax: 2, logger });
try {
  try {
    await sequelize.authenticate();
  } catch (error) {
    fail(EX_UNAVAILABLE, `cannot reach the database at ${shown(config.databaseUrl)}: ${(error as Error).message}`);
  }
  const applied = await migrate(config.databaseUrl, sequelize, logger);
  if (applied.length > 0) process.stderr.write(`bootstrap: applied migrations: ${applied.join(', ')}\n`);
  const mergePolicies = { default: config.gitops.mergePolicy, ...config.gitops.mergePolicyByKind };
  const requestedBy = options['requested-by'] ?? `cli:${os.userInfo().username}`;
  const { changeId, created } = await proposePlatformBootstrap(sequelize, payload, requestedBy, mergePolicies);
  process.stdout.write(
    `${created ? 'Proposed' : 'Already proposed (pending or open)'}: platform.bootstrap change ${changeId}\n` +
      `Follow it: GET /changes/${changeId} (platform admin): status, branch, pull request, lastError.\n` +
      'A running service\'s change worker renders it into platform/base/ and opens the pull request (or commits it, per GITOPS_MERGE_POLICY).\n',
  );
} finally {
  await sequelize.close();
}
