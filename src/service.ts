import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Sequelize } from 'sequelize';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { createMetrics, registerGithubBudgetGauges, registerStateGauges, type Metrics } from './metrics.ts';
import { readStateCounts } from './domain/state-gauges.ts';
import { redactUrl, RemotePusher } from './jobs/remote-pusher.ts';
import { BATCH_BRANCH_PREFIX } from './domain/changes/change-kinds.ts';
import { createConverger } from './domain/convergence/converger.ts';
import { createSequelize, pingDatabase } from './db/database.ts';
import { migrate } from './db/migrator.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded-postgres.ts';
import { generateApiToken, upsertApiToken } from './db/api-tokens.ts';
import { createApp } from './api/app.ts';
import { systemRoutes } from './api/routes/system-routes.ts';
import { signingRoutes } from './api/routes/signing-routes.ts';
import { loadSigningKey, SigningKeyError } from './gitops/local/commit-signing.ts';
import type { RouteSpec } from './api/route.ts';
import { createAuthenticate } from './api/auth/authenticate.ts';
import { createOidcVerifier } from './api/auth/oidc-verifier.ts';
import { workspaceRoutes } from './api/routes/workspace-routes.ts';
import { catalogRoutes } from './api/routes/catalog-routes.ts';
import { instanceRoutes } from './api/routes/instance-routes.ts';
import { billingRoutes } from './api/routes/billing-routes.ts';
import { seedCatalog } from './domain/catalog-seed.ts';
import { ParametersValidator } from './domain/parameters-schema.ts';
import { LocalRepository } from './gitops/local/local-repository.ts';
import { ConfigError } from './errors.ts';
import { readInitialLayout } from './gitops/initial-layout.ts';
import type { GitopsRepository } from './gitops/repository.ts';
import type { BackgroundTask } from './jobs/background-task.ts';
import { LocalPullRequests } from './gitops/local/local-pull-requests.ts';
import { createGithubClient, GithubRepository } from './gitops/github/github-repository.ts';
import { GithubBudget, orgsPerBatch } from './gitops/github/github-budget.ts';
import { loadTemplateCatalog } from './gitops/render/template-catalog.ts';
import { createChangeWorker } from './jobs/change-worker.ts';
import { changeRoutes } from './api/routes/change-routes.ts';
import { tokenRoutes } from './api/routes/token-routes.ts';
import { createIdempotencyKeyExpiryTask } from './jobs/idempotency-key-expiry.ts';
import { createMeteringTask } from './jobs/metering-task.ts';
import { webhookRoutes } from './api/routes/webhook-routes.ts';
import { GithubSignatureVerifier } from './webhooks/github-signature.ts';
import { ArgocdTokenVerifier } from './webhooks/argocd-token.ts';
import { createReconcilerTask } from './jobs/reconcilers.ts';
import { createKubernetesApplicationLister, loadKubeConfig } from './jobs/argocd-applications.ts';
import { createSyncSimulator } from './dev/sync-simulator.ts';
import { cacheAncestry } from './gitops/ancestry-cache.ts';
import { SaleorSignatureVerifier } from './webhooks/saleor-signature.ts';
import { saleorRoutes } from './api/routes/saleor-routes.ts';
import { createSaleorOrderReader } from './jobs/saleor-orders.ts';
import { createSaleorReconcileTask } from './jobs/saleor-reconciler.ts';
import { KeycloakAdminDirectory } from './keycloak/keycloak-admin-directory.ts';
import { createMembershipMirror } from './jobs/membership-mirror.ts';

export interface RunningService {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Set in embedded mode: a platform-admin API token for trying the API. */
  developmentToken: string | undefined;
  sequelize: Sequelize;
  /** Every route the server answers (what /openapi.json documents). */
  routes: readonly RouteSpec[];
  /** Drains HTTP, then background tasks, then closes the pool (and the embedded database). */
  stop(): Promise<void>;
}

const VERSION = '0.1.0';

/**
 * The composition root's body: builds every dependency from the config, in order, and wires
 * them together. Nothing here is global; two services can run in one process (tests do).
 */
export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    logger.info({ dataDir: config.dataDir }, 'DATABASE_URL is not set: starting embedded PostgreSQL');
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
    databaseUrl = embedded.url;
  }

  const sequelize = createSequelize({ url: databaseUrl, poolMax: config.databasePoolMax, logger });
  const applied = await migrate(databaseUrl, sequelize, logger);
  logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');

  const metrics = createMetrics();
  registerStateGauges(metrics.registry, { read: () => readStateCounts(sequelize), onError: (err) => logger.warn({ err }, 'reading the state gauges failed: /metrics keeps the last values') });
  const tasks: BackgroundTask[] = [];
  const { repository, budget } = await createRepository(config, logger, sequelize, { metrics, tasks });

  let developmentToken: string | undefined;
  if (embedded) developmentToken = await ensureDevelopmentToken(config.dataDir, sequelize);
  const seeded = await seedCatalog(sequelize);
  logger.info(seeded, 'offering catalog seeded');

  tasks.push(createIdempotencyKeyExpiryTask({ sequelize, logger: logger.child({ task: 'idempotency-key-expiry' }), retentionHours: config.idempotencyKeyRetentionHours }));
  tasks.push(createMeteringTask({ sequelize, now: () => new Date(), logger: logger.child({ task: 'metering' }), metrics, intervalMs: config.billing.meteringIntervalMs }));
  let draining = false;
  const routes: RouteSpec[] = [];
  routes.push(
    ...systemRoutes({
      metrics,
      isDraining: () => draining,
      readiness: [
        { name: 'database', check: () => pingDatabase(sequelize) },
        // GitHub is read at most once a minute for this (GithubRepository.ping caches), and its
        // outage degrades readiness rather than failing it: webhooks keep being received.
        { name: 'gitops', check: () => repository.ping(), critical: repository.driver !== 'github' },
      ],
      info: {
        title: 'control-plane',
        version: VERSION,
        description: 'Workspaces, offerings, instances and billing for the platform, delivered as commits to gsv-gitops.',
      },
      allRoutes: () => routes,
    }),
  );

  const authenticate = createAuthenticate({ sequelize, ...(config.oidc ? { verifyJwt: createOidcVerifier(config.oidc) } : {}) });
  const parameters = new ParametersValidator();
  const mergePolicies = { default: config.gitops.mergePolicy, ...config.gitops.mergePolicyByKind };
  const catalog = await loadTemplateCatalog();
  routes.push(
    ...workspaceRoutes({ sequelize, mergePolicy: mergePolicies, billing: config.billing, mirrorToKeycloak: config.keycloak !== undefined }),
    ...catalogRoutes({ sequelize, catalog }),
    ...tokenRoutes({ sequelize }),
    ...instanceRoutes({ sequelize, mergePolicy: mergePolicies, parameters, billing: config.billing, reasonRequiredFor: config.gitops.reasonRequiredFor, preview: { repository, catalog } }),
    ...billingRoutes({
      sequelize,
      now: () => new Date(),
      defaultHoldTtlSeconds: config.billing.holdTtlSeconds,
      memberHolds: { maxPendingMinor: config.billing.memberHoldMaxMinor, maxSeconds: config.billing.memberHoldMaxSeconds },
    }),
    ...saleorRoutes({ sequelize, now: () => new Date() }),
  );

  // Git is the truth: every move of the base branch is read back, whoever made it.
  const converger = createConverger({
    sequelize,
    repository,
    mergePolicy: mergePolicies,
    onResult: (result) => {
      if (result.external.length > 0 || result.unknown.length > 0 || result.proposals.length > 0) {
        logger.info({ head: result.head, external: result.external, unknown: result.unknown, proposals: result.proposals }, 'base branch read back');
      }
    },
  });
  const converge = (move?: Parameters<typeof converger.converge>[0]) => converger.converge(move);

  // The GitOps change engine: the outbox worker and the change/audit API.
  routes.push(...changeRoutes({ sequelize, repository, mergePolicy: mergePolicies, billing: config.billing, afterMerge: converge }));
  routes.push(...signingRoutes(repository instanceof LocalRepository ? { driver: 'local', key: repository.signingKey } : { driver: 'github', auth: config.gitops.github && 'token' in config.gitops.github.auth ? 'token' : 'app' }));
  tasks.push(
    createChangeWorker({
      sequelize,
      repository,
      catalog,
      logger,
      windowMs: config.gitops.batchWindowMs,
      maxBatch: config.gitops.batchMax,
      batchCommits: config.gitops.batchCommits,
      // Per-org commits cost GitHub 2 writes an org: a batch takes as many orgs as the write
      // budget's burst pays for at once (13 with the default 30).
      ...(config.gitops.github ? { maxOrgsPerBatch: orgsPerBatch(config.gitops.github.budget.burst) } : {}),
      leaseMs: config.gitops.workerLeaseMs,
      pollMs: 250,
      maxAttempts: 12,
      metrics,
      afterLanding: converge,
      ...(budget ? { budget } : {}),
    }),
  );

  const saleorProduct = config.saleor
    ? { sku: config.saleor.creditSku, minorPerUnit: BigInt(config.saleor.minorPerUnit), currency: config.saleor.currency }
    : undefined;
  // Webhooks, their fallback reconcilers, and (development only) the Argo CD stand-in.
  const simulate = config.syncSimulator && repository instanceof LocalRepository;
  const argocdToken = config.webhooks.argocdToken ?? (simulate ? randomBytes(32).toString('base64url') : undefined);
  // One cache of ancestry answers for the Argo CD receiver and the reconciler alike.
  const ancestry = cacheAncestry(repository);
  routes.push(
    ...webhookRoutes({
      sequelize,
      repository: ancestry,
      baseBranch: config.gitops.baseBranch,
      converge,
      logger: logger.child({ component: 'webhooks' }),
      github: config.webhooks.githubSecrets.length > 0 ? new GithubSignatureVerifier(config.webhooks.githubSecrets) : undefined,
      argocd: argocdToken ? new ArgocdTokenVerifier(argocdToken) : undefined,
      ...(saleorProduct && config.saleor ? { saleor: { verifier: new SaleorSignatureVerifier({ apiUrl: config.saleor.apiUrl }), product: saleorProduct } } : {}),
      metrics,
    }),
  );
  if (config.saleor?.appToken && saleorProduct) {
    tasks.push(
      createSaleorReconcileTask({
        sequelize,
        now: () => new Date(),
        orders: createSaleorOrderReader({ apiUrl: config.saleor.apiUrl, appToken: config.saleor.appToken }),
        product: saleorProduct,
        metrics,
        logger: logger.child({ task: 'saleor-reconcile' }),
        intervalMs: config.saleor.reconcileIntervalMs,
      }),
    );
  } else if (config.saleor) {
    logger.warn('SALEOR_APP_TOKEN is not set: no reconciler compares Saleor orders with credits, so a lost Saleor webhook is not made up for');
  }
  const kubeConfig = loadKubeConfig(config.reconcile.kubeconfig);
  tasks.push(
    createReconcilerTask({
      sequelize,
      repository: {
        getPullRequest: (number) => repository.getPullRequest(number),
        mergePullRequest: (number, options) => repository.mergePullRequest(number, options),
        isAncestor: (a, d) => ancestry.isAncestor(a, d),
      },
      metrics,
      applications: kubeConfig ? createKubernetesApplicationLister(kubeConfig, config.reconcile.argocdNamespace) : undefined,
      logger: logger.child({ task: 'reconciler' }),
      converge,
      intervalMs: config.reconcile.intervalMs,
      progressDeadlineSeconds: config.reconcile.progressDeadlineSeconds,
    }),
  );
  let serviceUrl = '';
  if (simulate && argocdToken) {
    logger.warn('SYNC_SIMULATOR is on: a development stand-in plays Argo CD after merges (never use this in production)');
    tasks.push(createSyncSimulator({ sequelize, repository, serviceUrl: () => serviceUrl, argocdToken, logger: logger.child({ task: 'sync-simulator' }) }));
  }

  // Keycloak follows membership: the API writes the outbox, the leader applies it.
  if (config.keycloak) {
    const { url, realm, clientId, clientSecret, timeoutMs, reconcileIntervalMs } = config.keycloak;
    tasks.push(
      createMembershipMirror({
        sequelize,
        directory: new KeycloakAdminDirectory({ url, realm, clientId, clientSecret, timeoutMs }),
        logger,
        metrics,
        pollMs: 1_000,
        reconcileIntervalMs,
        // An operation is at most about eight requests.
        leaseMs: timeoutMs * 10,
      }),
    );
    logger.info({ keycloak: redactUrl(url), realm, clientId }, 'membership mirror on: org groups and members follow the API in Keycloak');
  } else {
    logger.info('membership mirror off: KEYCLOAK_URL unset');
  }

  const app = createApp({ logger, metrics, bodyLimitBytes: config.bodyLimitBytes, routes, authenticate, sequelize });
  const server = http.createServer(app.callback());
  // Slow-loris guard; keep-alive shorter than typical load balancer idle timeouts is not wanted,
  // so keep it above them (60 s on most) to avoid races on reused connections.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
  serviceUrl = url;
  for (const task of tasks) task.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      logger.info('shutting down: draining HTTP requests');
      // close() stops accepting and ends idle keep-alive connections; in-flight requests finish.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const idleCloser = setInterval(() => server.closeIdleConnections(), 100);
      await closed;
      clearInterval(idleCloser);
      await Promise.all(tasks.map((task) => task.stop()));
      await sequelize.close();
      if (embedded) await embedded.stop();
      logger.info('shutdown complete');
    })());

  return { url, developmentToken, sequelize, routes, stop };
}

async function createRepository(
  config: Config,
  logger: Logger,
  sequelize: Sequelize,
  wiring: { metrics: Metrics; tasks: BackgroundTask[] },
): Promise<{ repository: GitopsRepository; budget?: GithubBudget }> {
  if (config.gitops.github) {
    const { owner, repo, apiUrl, auth, mergeMethods, budget: limits } = config.gitops.github;
    const budget = new GithubBudget({ sequelize, identity: githubIdentity(apiUrl, auth), ...limits });
    registerGithubBudgetGauges(wiring.metrics.registry, budget, (err) => logger.warn({ err }, 'reading the GitHub write budget failed'));
    const repository = new GithubRepository({ octokit: await createGithubClient({ auth, baseUrl: apiUrl, budget }), owner, repo, baseBranch: config.gitops.baseBranch, mergeMethods });
    logger.info({ repository: `${owner}/${repo}`, branch: repository.baseBranch, writesPerHour: limits.writesPerHour, burst: limits.burst }, 'GitHub GitOps repository configured');
    // GitHub signs (Verified) the commits a GitHub App creates through the API when they carry
    // no author, committer or signature of their own, which createCommit never sends; it does
    // not sign those made with a user's token (README "Signed commits").
    if ('token' in auth) logger.warn('GITHUB_TOKEN: the commits this service creates are unsigned on GitHub; a GitHub App (GITHUB_APP_*) has GitHub sign them');
    return { repository, budget };
  }
  const { localPath, localPushUrl, baseBranch } = config.gitops;
  const pusher = localPushUrl
    ? new RemotePusher({ gitDir: localPath, url: localPushUrl, baseBranch, ownedPrefix: BATCH_BRANCH_PREFIX, logger, metrics: wiring.metrics })
    : undefined;
  if (pusher) wiring.tasks.push(pusher);
  const signingKey = config.gitops.localSigningKey
    ? await loadSigningKey(config.gitops.localSigningKey).catch((error: unknown) => {
        throw error instanceof SigningKeyError ? new ConfigError([error.message]) : error;
      })
    : undefined;
  const repository = new LocalRepository({
    gitDir: localPath,
    baseBranch,
    pullRequests: new LocalPullRequests({ sequelize, repository: localPath }),
    ...(pusher ? { onRefMoved: () => pusher.notify() } : {}),
    ...(signingKey ? { signingKey } : {}),
  });
  await repository.ensureInitialized(await readInitialLayout());
  logger.info(
    { gitDir: repository.gitDir, branch: repository.baseBranch, pushTo: localPushUrl ? redactUrl(localPushUrl) : undefined, signingKey: signingKey?.fingerprint ?? null },
    signingKey ? 'local GitOps repository ready; commits are signed' : 'local GitOps repository ready; commits are unsigned (GITOPS_LOCAL_SIGNING_KEY unset)',
  );
  return { repository };
}

/** The embedded default's platform-admin token, kept in DATA_DIR so it survives restarts. */
async function ensureDevelopmentToken(dataDir: string, sequelize: Sequelize): Promise<string> {
  const file = path.join(dataDir, 'development-api-token');
  let token = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (!token) {
    token = generateApiToken();
    await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
  }
  await upsertApiToken(sequelize, token, {
    name: 'development',
    subject: 'development',
    username: 'developer',
    email: 'developer@localhost',
    platformAdmin: true,
  });
  return token;
}

/**
 * Whose rate limits a client spends: GitHub counts per installation (an App) or per user (a
 * token), on one GitHub host. A token is named by a hash prefix, never in clear.
 */
function githubIdentity(apiUrl: string, auth: { token: string } | { installationId: number }): string {
  const who = 'token' in auth ? `token:${createHash('sha256').update(auth.token).digest('hex').slice(0, 16)}` : `installation:${auth.installationId}`;
  return `${new URL(apiUrl).host}/${who}`;
}
