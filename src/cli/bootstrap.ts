import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { EX_CONFIG, EX_UNAVAILABLE, EX_USAGE, failer, readConfig, shown } from './cli-support.ts';
import { createLogger } from '../logger.ts';
import { createSequelize } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { InvalidPayloadError, parseChange, type PlatformBootstrap } from '../gitops/render/change-payloads.ts';
import { proposePlatformBootstrap } from '../domain/platform-bootstrap.ts';

// `npm run bootstrap -- --image … --host … …`: proposes templates/platform/ as a
// platform.bootstrap change through the same domain function as POST /platform/bootstrap.

const USAGE = `usage: npm run bootstrap -- --image IMAGE --host HOST --notifications-url URL --secret-store NAME
                              [--gitops-repo-url URL] [--base-branch BRANCH] [--requested-by WHO]

  --image              control plane image, e.g. ghcr.io/gsv/control-plane:0.1.0
  --host               public host name of the control plane's Ingress
  --notifications-url  the service's URL as Argo CD Notifications reaches it (in-cluster)
  --secret-store       ClusterSecretStore the ExternalSecrets read from
  --gitops-repo-url    the GitOps repository as Argo CD clones it
                       (default with GITOPS_DRIVER=github: https://github.com/GITHUB_REPOSITORY.git)
  --base-branch        branch Argo CD watches (default: GITOPS_BASE_BRANCH)
  --requested-by       recorded on the change (default: cli:<user>)

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
const missing: string[] = (['image', 'host', 'notifications-url', 'secret-store'] as const).filter((name) => !options[name]);
if (!gitopsRepoURL) missing.push('gitops-repo-url');
if (missing.length > 0) fail(EX_USAGE, `missing ${missing.map((m) => `--${m}`).join(', ')}`, true);

const payload: PlatformBootstrap = {
  image: options.image!,
  host: options.host!,
  gitopsRepoURL: gitopsRepoURL!,
  baseBranch: options['base-branch'] ?? config.gitops.baseBranch,
  notificationsUrl: options['notifications-url']!,
  secretStore: options['secret-store']!,
};
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
