import path from 'node:path';
import { Type, type TSchema } from '@sinclair/typebox';
import { createAjv } from './validation.ts';
import { ConfigError } from './errors.ts';
import { BATCH_COMMIT_MODES, CHANGE_KINDS, MERGE_POLICIES, type BatchCommitMode, type ChangeKind, type MergePolicy } from './domain/changes/change-kinds.ts';
import { MANAGED_BY_SELECTOR } from './gitops/labels.ts';

interface Variable {
  name: string;
  description: string;
  /** Default as the environment would spell it; absent means optional with no default or required. */
  default?: string;
  required?: boolean;
  schema: TSchema;
  /**
   * The value is a secret: `value`, never printed (not in an error, not in a log); `credentials`,
   * a URL whose user and password are (the rest of it is shown, to point at a typo).
   */
  secret?: 'value' | 'credentials';
}

const port = Type.Integer({ minimum: 0, maximum: 65535 });
const positiveInt = Type.Integer({ minimum: 1 });
// From the kinds and policies defined once (domain/changes/change-kinds.ts).
/** Requests that take a reason (the kinds people ask for through /instances). */
export const REASON_KINDS = ['instance.create', 'instance.update', 'instance.delete'] as const;
const REASON_KIND = `(${REASON_KINDS.map((k) => k.replace('.', '\\.')).join('|')})`;
const MERGE_POLICY_ENTRY = `(${CHANGE_KINDS.map((k) => k.replace('.', '\\.')).join('|')})=(${MERGE_POLICIES.join('|')})`;

/**
 * Every environment variable the service reads, in one table: the parser below, the README's
 * table and its test all come from this list, so they cannot disagree.
 */
export const CONFIG_VARIABLES = [
  { name: 'HOST', description: 'Interface the HTTP server binds to.', default: '0.0.0.0', schema: Type.String({ minLength: 1 }) },
  { name: 'PORT', description: 'TCP port of the HTTP server (0 picks a free one).', default: '8080', schema: port },
  { name: 'LOG_LEVEL', description: 'pino log level.', default: 'info', schema: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))) },
  { name: 'DATA_DIR', description: 'Where embedded PostgreSQL and the local GitOps repository keep their files.', default: '.data', schema: Type.String({ minLength: 1 }) },
  { name: 'DATABASE_URL', description: 'PostgreSQL connection string. Unset: start an embedded PostgreSQL under DATA_DIR.', schema: Type.String({ pattern: '^postgres(ql)?://', description: 'a URL starting postgres:// or postgresql://' }), secret: 'credentials' },
  { name: 'DATABASE_POOL_MAX', description: 'Maximum connections in the pool per replica.', default: '10', schema: positiveInt },
  { name: 'EMBEDDED_POSTGRES_PORT', description: 'Port of the embedded PostgreSQL (only without DATABASE_URL).', default: '54329', schema: port },
  { name: 'BODY_LIMIT_BYTES', description: 'Largest accepted request body; larger bodies get 413. POST /webhooks/github takes up to GitHub\'s own cap on webhook payloads (25 MB) whatever this says.', default: '1048576', schema: positiveInt },
  { name: 'SHUTDOWN_TIMEOUT_MS', description: 'How long SIGTERM waits for in-flight requests and jobs before exiting.', default: '25000', schema: positiveInt },
  { name: 'GITOPS_DRIVER', description: 'Repository backend: `local` (bare repository on disk) or `github`.', default: 'local', schema: Type.Union([Type.Literal('local'), Type.Literal('github')]) },
  { name: 'GITOPS_LOCAL_PATH', description: 'Bare repository of the local driver. Default: DATA_DIR/gsv-gitops.git, created with the initial layout.', schema: Type.String({ minLength: 1 }) },
  { name: 'GITOPS_LOCAL_PUSH_URL', description: 'Remote the local driver pushes to (`git push`, e.g. a self-hosted Git server) after every ref it moves: the base branch fast-forward only, its own `control-plane/*` branches forced. A failed push never blocks a commit; it is retried with backoff. Credentials in the URL are never logged.', schema: Type.String({ minLength: 1 }), secret: 'credentials' },
  {
    name: 'GITOPS_LOCAL_SIGNING_KEY',
    description: 'Path of an unencrypted SSH private key (ed25519; mode 600 or 400) the local driver signs every commit it writes with (git `gpg.format=ssh`). `GET /platform/allowed-signers` publishes the allowed-signers line that `git log --show-signature` verifies them against. Unset: commits are unsigned. A key ssh-keygen cannot use stops the service at start (exit 78).',
    schema: Type.String({ minLength: 1 }),
  },
  { name: 'GITOPS_BASE_BRANCH', description: 'Branch that Argo CD watches.', default: 'main', schema: Type.String({ pattern: '^[A-Za-z0-9._/-]{1,200}$' }) },
  { name: 'GITOPS_MERGE_POLICY', description: 'How changes reach the base branch: `pull-request` (a PR a person merges), `auto-merge` (a PR merged by the service) or `direct` (a commit on the base branch).', default: 'pull-request', schema: Type.Union(MERGE_POLICIES.map((p) => Type.Literal(p))) },
  { name: 'GITOPS_MERGE_POLICY_BY_KIND', description: 'Exceptions to GITOPS_MERGE_POLICY per change kind, e.g. `instance.update=auto-merge,instance.delete=pull-request` (kinds: workspace.create, instance.create, instance.update, instance.delete, platform.bootstrap).', default: '', schema: Type.String({ pattern: `^(${MERGE_POLICY_ENTRY}(,${MERGE_POLICY_ENTRY})*)?$` }) },
  {
    name: 'GITOPS_REASON_REQUIRED_FOR',
    description: 'Instance requests that must say why (a non-blank `reason`, which becomes the commit\'s `Reason:` trailer), e.g. `instance.delete`; one without is a 422 `reason-required` and nothing is written. Empty: a reason is always optional.',
    default: '',
    schema: Type.String({ pattern: `^(${REASON_KIND}(,${REASON_KIND})*)?$` }),
  },
  {
    name: 'GITOPS_BATCH_COMMITS',
    description: 'How a batch shows in Git: `per-org-commits` (one pull request, one commit per org in it: `git log -- <org dir>` shows nothing of another org; on GitHub 2 writes per org more than `shared`), `per-org-pull-requests` (a batch holds one org\'s changes: a pull request per org), `shared` (one commit for the batch: the fewest GitHub writes; the audit API still shows each org only its own). README "Auditing a tenant".',
    default: 'per-org-commits',
    schema: Type.Union(BATCH_COMMIT_MODES.map((m) => Type.Literal(m))),
  },
  { name: 'GITOPS_BATCH_WINDOW_MS', description: 'How long an accepted change waits so that changes arriving together share one commit and pull request; a change with nothing else queued does not wait.', default: '2000', schema: Type.Integer({ minimum: 0, maximum: 600000 }) },
  { name: 'GITOPS_BATCH_MAX', description: 'Most changes in one commit and pull request. A batch takes what is queued up to this: one change when idle, more while the GitHub write budget makes changes wait.', default: '1000', schema: Type.Integer({ minimum: 1, maximum: 1000 }) },
  { name: 'GITOPS_WORKER_LEASE_MS', description: 'How long a worker owns a claimed batch; when it dies, another worker takes the batch over after this.', default: '120000', schema: Type.Integer({ minimum: 1000 }) },
  { name: 'GITHUB_REPOSITORY', description: 'The GitOps repository as `owner/name` (GITOPS_DRIVER=github).', schema: Type.String({ pattern: '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$' }) },
  { name: 'GITHUB_API_URL', description: 'GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3).', default: 'https://api.github.com', schema: Type.String({ pattern: '^https?://' }) },
  { name: 'GITHUB_TOKEN', description: 'Token with contents and pull-request write access (GITOPS_DRIVER=github, unless a GitHub App is configured).', schema: Type.String({ minLength: 1 }), secret: 'value' },
  { name: 'GITHUB_APP_ID', description: 'GitHub App id; with GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID the driver authenticates as the installation.', schema: Type.String({ pattern: '^[0-9]+$' }) },
  { name: 'GITHUB_APP_PRIVATE_KEY', description: 'PEM private key of the GitHub App (literal newlines or `\\n`).', schema: Type.String({ minLength: 1 }), secret: 'value' },
  {
    name: 'GITHUB_MERGE_METHODS',
    description: 'Merge methods the github driver may use, in order of preference (merge, squash, rebase): one the repository does not allow is skipped, and the one that worked is used first from then on.',
    default: 'merge,squash,rebase',
    schema: Type.String({ pattern: '^(merge|squash|rebase)(,(merge|squash|rebase))*$' }),
  },
  { name: 'GITHUB_APP_INSTALLATION_ID', description: 'Installation id of the GitHub App on the GitOps repository owner.', schema: Type.Integer({ minimum: 1 }) },
  {
    name: 'GITHUB_WRITES_PER_HOUR',
    description: "Most content-creating requests (POST, PATCH, PUT, DELETE) the github driver sends in any hour, all replicas together. GitHub allows about 500 an hour and 80 a minute per installation; the default leaves a tenth for people and other tools on the same identity.",
    default: '450',
    schema: Type.Integer({ minimum: 10, maximum: 500 }),
  },
  {
    name: 'GITHUB_WRITE_BURST',
    description: 'Writes the github driver may send at once after a quiet spell (the write bucket\'s size; it refills at GITHUB_WRITES_PER_HOUR minus this an hour). Must stay below GITHUB_WRITES_PER_HOUR, and with a minute\'s refill within GitHub\'s 80 a minute.',
    default: '30',
    schema: Type.Integer({ minimum: 5, maximum: 80 }),
  },
  {
    name: 'GITHUB_PRIMARY_RESERVE',
    description: "Requests of GitHub's primary limit (5,000 an hour) kept for reads: when fewer remain before the reset, no new batch is published until it.",
    default: '500',
    schema: Type.Integer({ minimum: 0 }),
  },
  { name: 'OIDC_ISSUER', description: 'Issuer (`iss`) of accepted JWTs, e.g. the Keycloak realm URL. Unset: OIDC is off and only API tokens authenticate.', schema: Type.String({ pattern: '^https?://' }) },
  { name: 'OIDC_AUDIENCE', description: 'Audience (`aud`) that accepted JWTs must carry. Required with OIDC_ISSUER.', schema: Type.String({ minLength: 1 }) },
  { name: 'OIDC_JWKS_URL', description: 'JWKS endpoint of the realm (e.g. `<issuer>/protocol/openid-connect/certs`). Required with OIDC_ISSUER.', schema: Type.String({ pattern: '^https?://' }) },
  { name: 'OIDC_ALGORITHMS', description: 'Comma-separated JWS algorithms accepted for JWTs (asymmetric only).', default: 'RS256,ES256', schema: Type.String({ pattern: '^((RS|PS|ES)(256|384|512)|EdDSA)(,((RS|PS|ES)(256|384|512)|EdDSA))*$' }) },
  { name: 'OIDC_ADMIN_ROLE', description: 'Realm role (`realm_access.roles`) that makes a caller a platform admin.', default: 'platform-admin', schema: Type.String({ minLength: 1 }) },
  { name: 'KEYCLOAK_URL', description: 'Base URL of Keycloak (e.g. `https://sso.example.com`) whose admin REST API the membership mirror writes: every org gets the groups `/orgs/<org>` and `/orgs/<org>/<role>`, and members added, re-roled or removed through the API follow. Unset: the mirror is off (the embedded default) and says so at start.', schema: Type.String({ pattern: '^https?://' }) },
  { name: 'KEYCLOAK_REALM', description: 'Realm whose groups the membership mirror keeps (with KEYCLOAK_URL).', schema: Type.String({ pattern: '^[A-Za-z0-9._-]{1,255}$' }) },
  { name: 'KEYCLOAK_CLIENT_ID', description: "Confidential client of KEYCLOAK_REALM whose service account the mirror acts as (client credentials grant); its service account needs realm-management's manage-users, view-users and query-groups. Required with KEYCLOAK_URL.", schema: Type.String({ minLength: 1 }) },
  { name: 'KEYCLOAK_CLIENT_SECRET', description: 'Secret of KEYCLOAK_CLIENT_ID (keep it in a Kubernetes Secret; the service never logs it). Required with KEYCLOAK_URL.', schema: Type.String({ minLength: 1 }), secret: 'value' },
  { name: 'KEYCLOAK_TIMEOUT_MS', description: 'How long one Keycloak request may take before the mirror gives up on it and retries later with backoff.', default: '10000', schema: Type.Integer({ minimum: 100, maximum: 120000 }) },
  { name: 'KEYCLOAK_RECONCILE_INTERVAL_MS', description: "How often the mirror's leader reads every org's Keycloak groups and corrects members changed in Keycloak's console toward the database.", default: '300000', schema: positiveInt },
  { name: 'IDEMPOTENCY_KEY_RETENTION_HOURS', description: 'How long an Idempotency-Key and its stored response are kept; after that the same key executes again.', default: '24', schema: positiveInt },
  { name: 'BILLING_TRIAL_CURRENCY', description: 'Currency (ISO 4217) of the wallet and trial credit a new workspace gets.', default: 'EUR', schema: Type.String({ pattern: '^[A-Z]{3}$' }) },
  { name: 'BILLING_TRIAL_CREDIT_MINOR', description: 'Trial credit for a new workspace, in minor units of BILLING_TRIAL_CURRENCY (0: none).', default: '5000', schema: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) },
  { name: 'BILLING_HOLD_TTL_SECONDS', description: 'Expiry of a billing hold (setup fee, API holds without expiresInSeconds); an expired hold is released.', default: '604800', schema: positiveInt },
  { name: 'BILLING_MEMBER_HOLD_MAX_MINOR', description: "The most a member (not an owner) may have held at once on one of the org's wallets through POST /billing/authorize, in minor units (0: members place no holds). Past it: 403 member-hold-limit.", default: '10000', schema: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) },
  { name: 'BILLING_MEMBER_HOLD_MAX_SECONDS', description: "The longest a member's hold may last (expiresInSeconds past it: 422 hold-lifetime-limit; a member's hold without one lasts the shorter of this and BILLING_HOLD_TTL_SECONDS).", default: '86400', schema: positiveInt },
  { name: 'METERING_INTERVAL_MS', description: 'How often the metering leader looks for completed hours to charge and expired holds.', default: '60000', schema: positiveInt },
  { name: 'GITHUB_WEBHOOK_SECRET', description: 'Secret of the GitHub webhook (X-Hub-Signature-256). Unset: POST /webhooks/github answers 404.', schema: Type.String({ minLength: 1 }), secret: 'value' },
  { name: 'GITHUB_WEBHOOK_ADDITIONAL_SECRETS', description: 'Comma-separated further secrets also accepted, for rotating GITHUB_WEBHOOK_SECRET without downtime.', schema: Type.String({ pattern: '^[^,]+(,[^,]+)*$', description: 'comma-separated, non-empty values' }), secret: 'value' },
  { name: 'ARGOCD_WEBHOOK_TOKEN', description: 'Bearer secret Argo CD Notifications sends (from argocd-notifications-secret). Unset: POST /webhooks/argocd answers 404, except that the sync simulator makes one up.', schema: Type.String({ minLength: 16 }), secret: 'value' },
  { name: 'SALEOR_API_URL', description: 'GraphQL API URL of the Saleor that sells credit (e.g. `https://shop.example.com/graphql/`); its JWKS (`<origin>/.well-known/jwks.json`) verifies Saleor-Signature. Unset: POST /webhooks/saleor answers 404 and nothing reads Saleor.', schema: Type.String({ pattern: '^https?://[^/]+/' }) },
  { name: 'SALEOR_APP_TOKEN', description: 'Token of the Saleor app (permission MANAGE_ORDERS) with which the reconciler reads paid orders. Unset: no Saleor reconciler.', schema: Type.String({ minLength: 1 }), secret: 'value' },
  { name: 'SALEOR_CREDIT_SKU', description: 'SKU of the Saleor product variant that is wallet credit; each unit of it in a fully paid order credits SALEOR_CREDIT_MINOR_PER_UNIT.', default: 'gsv-credit', schema: Type.String({ minLength: 1, maxLength: 255 }) },
  { name: 'SALEOR_CREDIT_MINOR_PER_UNIT', description: 'Minor units of SALEOR_CREDIT_CURRENCY that one unit of the credit variant credits (whatever the order paid for it).', default: '100', schema: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }) },
  { name: 'SALEOR_CREDIT_CURRENCY', description: 'Currency (ISO 4217) of the wallet that Saleor credit goes to.', default: 'EUR', schema: Type.String({ pattern: '^[A-Z]{3}$' }) },
  { name: 'SALEOR_RECONCILE_INTERVAL_MS', description: 'How often the Saleor reconciler leader compares the paid orders of yesterday and today (UTC) with credits, crediting what a lost webhook missed.', default: '3600000', schema: positiveInt },
  { name: 'RECONCILE_INTERVAL_MS', description: 'How often the reconciler leader polls open pull requests and Argo CD Applications (the fallback for lost webhooks).', default: '60000', schema: positiveInt },
  { name: 'INSTANCE_PROGRESS_DEADLINE_SECONDS', description: 'How long a merged change may take to become ready before the instance reports Ready=False, reason ProgressDeadlineExceeded (an offering version may set its own progressDeadlineSeconds). Checked by the reconciler; the instance may still turn ready later.', default: '900', schema: positiveInt },
  { name: 'ARGOCD_NAMESPACE', description: `Namespace of the Argo CD Applications the reconciler lists (label ${MANAGED_BY_SELECTOR}).`, default: 'argocd', schema: Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }) },
  { name: 'KUBECONFIG', description: 'Kubeconfig for listing Argo CD Applications. Unset: in-cluster config when running in a pod, otherwise no Application reconciler.', schema: Type.String({ minLength: 1 }) },
  { name: 'SYNC_SIMULATOR', description: 'Development only: play Argo CD after merges (validate the rendered Application, post notifications to the webhook). Default: on in embedded mode (no DATABASE_URL), off otherwise.', schema: Type.Union([Type.Literal('true'), Type.Literal('false')]) },
] as const satisfies readonly Variable[];

export interface Config {
  host: string;
  port: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  dataDir: string;
  /** Undefined means embedded PostgreSQL. */
  databaseUrl: string | undefined;
  databasePoolMax: number;
  embeddedPostgresPort: number;
  bodyLimitBytes: number;
  shutdownTimeoutMs: number;
  gitops: {
    driver: 'local' | 'github';
    localPath: string;
    /** GITOPS_LOCAL_PUSH_URL: where the local driver pushes its refs; undefined: no push. */
    localPushUrl: string | undefined;
    /** GITOPS_LOCAL_SIGNING_KEY, resolved against the working directory. */
    localSigningKey: string | undefined;
    baseBranch: string;
    mergePolicy: 'pull-request' | 'auto-merge' | 'direct';
    /** Exceptions to mergePolicy, per change kind. */
    mergePolicyByKind: Partial<Record<ChangeKind, MergePolicy>>;
    /** GITOPS_REASON_REQUIRED_FOR: requests refused without a reason. */
    reasonRequiredFor: (typeof REASON_KINDS)[number][];
    batchCommits: BatchCommitMode;
    batchWindowMs: number;
    batchMax: number;
    workerLeaseMs: number;
    /** Set when GITOPS_DRIVER=github. */
    github:
      | {
          owner: string;
          repo: string;
          apiUrl: string;
          auth: { token: string } | { appId: string; privateKey: string; installationId: number };
          mergeMethods: ('merge' | 'squash' | 'rebase')[];
          budget: { writesPerHour: number; burst: number; primaryReserve: number };
        }
      | undefined;
  };
  /** Undefined when OIDC_ISSUER is unset: only API tokens authenticate. */
  oidc: { issuer: string; audience: string; jwksUrl: string; algorithms: string[]; adminRole: string } | undefined;
  idempotencyKeyRetentionHours: number;
  billing: { trialCurrency: string; trialCreditMinor: number; holdTtlSeconds: number; memberHoldMaxMinor: number; memberHoldMaxSeconds: number; meteringIntervalMs: number };
  webhooks: {
    /** Current secret first, then the additional ones; empty: the GitHub receiver is off. */
    githubSecrets: string[];
    argocdToken: string | undefined;
  };
  /** Undefined when SALEOR_API_URL is unset. */
  saleor: { apiUrl: string; appToken: string | undefined; creditSku: string; minorPerUnit: number; currency: string; reconcileIntervalMs: number } | undefined;
  reconcile: { intervalMs: number; argocdNamespace: string; kubeconfig: string | undefined; progressDeadlineSeconds: number };
  /** Undefined when KEYCLOAK_URL is unset: memberships are not mirrored to Keycloak. */
  keycloak: { url: string; realm: string; clientId: string; clientSecret: string; timeoutMs: number; reconcileIntervalMs: number } | undefined;
  syncSimulator: boolean;
}

type VariableName = (typeof CONFIG_VARIABLES)[number]['name'];

/** Parses and validates the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): Config {
  const ajv = createAjv({ coerceTypes: true, useDefaults: false });
  const problems: string[] = [];
  const values = new Map<VariableName, unknown>();

  for (const variable of CONFIG_VARIABLES as readonly Variable[]) {
    const raw = env[variable.name];
    const text = raw === undefined || raw === '' ? variable.default : raw;
    if (text === undefined) {
      if (variable.required) problems.push(`${variable.name} is required: ${variable.description}`);
      continue;
    }
    // Coercion happens in place on a wrapper object so that "8080" becomes 8080.
    const holder: { value: unknown } = { value: text };
    const validate = ajv.compile(Type.Object({ value: variable.schema }));
    if (!validate(holder)) {
      problems.push(`${shownValue(variable, text)} is invalid (${describeExpected(variable.schema)}): ${variable.description}`);
      continue;
    }
    values.set(variable.name as VariableName, holder.value);
  }
  if (values.has('OIDC_ISSUER')) {
    for (const name of ['OIDC_AUDIENCE', 'OIDC_JWKS_URL'] as const) {
      if (!values.has(name)) problems.push(`${name} is required when OIDC_ISSUER is set`);
    }
  }
  if (values.has('SALEOR_APP_TOKEN') && !values.has('SALEOR_API_URL')) problems.push('SALEOR_APP_TOKEN needs SALEOR_API_URL (the Saleor it reads)');
  if (values.has('KEYCLOAK_URL')) {
    for (const name of ['KEYCLOAK_REALM', 'KEYCLOAK_CLIENT_ID', 'KEYCLOAK_CLIENT_SECRET'] as const) {
      if (!values.has(name)) problems.push(`${name} is required when KEYCLOAK_URL is set`);
    }
  }
  if (values.has('GITOPS_LOCAL_PUSH_URL') && values.get('GITOPS_DRIVER') !== 'local') {
    problems.push('GITOPS_LOCAL_PUSH_URL applies to GITOPS_DRIVER=local only (the github driver writes to GitHub itself)');
  }
  if (values.has('GITOPS_LOCAL_SIGNING_KEY') && values.get('GITOPS_DRIVER') !== 'local') {
    problems.push('GITOPS_LOCAL_SIGNING_KEY applies to GITOPS_DRIVER=local only (on GitHub, GitHub signs the commits a GitHub App creates: README "Signed commits")');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const get = <T>(name: VariableName): T => values.get(name) as T;
  const dataDir = path.resolve(cwd, get<string>('DATA_DIR'));
  const localPath = values.has('GITOPS_LOCAL_PATH')
    ? path.resolve(cwd, get<string>('GITOPS_LOCAL_PATH'))
    : path.join(dataDir, 'gsv-gitops.git');

  return {
    host: get('HOST'),
    port: get('PORT'),
    logLevel: get('LOG_LEVEL'),
    dataDir,
    databaseUrl: get('DATABASE_URL'),
    databasePoolMax: get('DATABASE_POOL_MAX'),
    embeddedPostgresPort: get('EMBEDDED_POSTGRES_PORT'),
    bodyLimitBytes: get('BODY_LIMIT_BYTES'),
    shutdownTimeoutMs: get('SHUTDOWN_TIMEOUT_MS'),
    gitops: {
      driver: get('GITOPS_DRIVER'),
      localPath,
      localPushUrl: get('GITOPS_LOCAL_PUSH_URL'),
      localSigningKey: values.has('GITOPS_LOCAL_SIGNING_KEY') ? path.resolve(cwd, get<string>('GITOPS_LOCAL_SIGNING_KEY')) : undefined,
      baseBranch: get('GITOPS_BASE_BRANCH'),
      mergePolicy: get('GITOPS_MERGE_POLICY'),
      mergePolicyByKind: parseMergePolicyByKind(get<string>('GITOPS_MERGE_POLICY_BY_KIND')),
      reasonRequiredFor: get<string>('GITOPS_REASON_REQUIRED_FOR').split(',').filter(Boolean) as Config['gitops']['reasonRequiredFor'],
      batchCommits: get('GITOPS_BATCH_COMMITS'),
      batchWindowMs: get('GITOPS_BATCH_WINDOW_MS'),
      batchMax: get('GITOPS_BATCH_MAX'),
      workerLeaseMs: get('GITOPS_WORKER_LEASE_MS'),
      github: githubSettings(get('GITOPS_DRIVER'), values),
    },
    oidc: values.has('OIDC_ISSUER')
      ? {
          issuer: get('OIDC_ISSUER'),
          audience: get('OIDC_AUDIENCE'),
          jwksUrl: get('OIDC_JWKS_URL'),
          algorithms: get<string>('OIDC_ALGORITHMS').split(','),
          adminRole: get('OIDC_ADMIN_ROLE'),
        }
      : undefined,
    idempotencyKeyRetentionHours: get('IDEMPOTENCY_KEY_RETENTION_HOURS'),
    billing: {
      trialCurrency: get('BILLING_TRIAL_CURRENCY'),
      trialCreditMinor: get('BILLING_TRIAL_CREDIT_MINOR'),
      holdTtlSeconds: get('BILLING_HOLD_TTL_SECONDS'),
      memberHoldMaxMinor: get('BILLING_MEMBER_HOLD_MAX_MINOR'),
      memberHoldMaxSeconds: get('BILLING_MEMBER_HOLD_MAX_SECONDS'),
      meteringIntervalMs: get('METERING_INTERVAL_MS'),
    },
    webhooks: {
      githubSecrets: values.has('GITHUB_WEBHOOK_SECRET')
        ? [get<string>('GITHUB_WEBHOOK_SECRET'), ...(values.has('GITHUB_WEBHOOK_ADDITIONAL_SECRETS') ? get<string>('GITHUB_WEBHOOK_ADDITIONAL_SECRETS').split(',') : [])]
        : [],
      argocdToken: get('ARGOCD_WEBHOOK_TOKEN'),
    },
    saleor: values.has('SALEOR_API_URL')
      ? {
          apiUrl: get('SALEOR_API_URL'),
          appToken: get('SALEOR_APP_TOKEN'),
          creditSku: get('SALEOR_CREDIT_SKU'),
          minorPerUnit: get('SALEOR_CREDIT_MINOR_PER_UNIT'),
          currency: get('SALEOR_CREDIT_CURRENCY'),
          reconcileIntervalMs: get('SALEOR_RECONCILE_INTERVAL_MS'),
        }
      : undefined,
    reconcile: {
      intervalMs: get('RECONCILE_INTERVAL_MS'),
      progressDeadlineSeconds: get('INSTANCE_PROGRESS_DEADLINE_SECONDS'),
      argocdNamespace: get('ARGOCD_NAMESPACE'),
      kubeconfig: values.has('KUBECONFIG') ? path.resolve(cwd, get<string>('KUBECONFIG')) : undefined,
    },
    keycloak: values.has('KEYCLOAK_URL')
      ? {
          url: get('KEYCLOAK_URL'),
          realm: get('KEYCLOAK_REALM'),
          clientId: get('KEYCLOAK_CLIENT_ID'),
          clientSecret: get('KEYCLOAK_CLIENT_SECRET'),
          timeoutMs: get('KEYCLOAK_TIMEOUT_MS'),
          reconcileIntervalMs: get('KEYCLOAK_RECONCILE_INTERVAL_MS'),
        }
      : undefined,
    syncSimulator: values.has('SYNC_SIMULATOR') ? get<string>('SYNC_SIMULATOR') === 'true' : !values.has('DATABASE_URL'),
  };
}

function githubSettings(driver: 'local' | 'github', values: Map<VariableName, unknown>): Config['gitops']['github'] {
  if (driver !== 'github') return undefined;
  const problems: string[] = [];
  const repository = values.get('GITHUB_REPOSITORY') as string | undefined;
  if (!repository) problems.push('GITHUB_REPOSITORY is required with GITOPS_DRIVER=github: the GitOps repository as owner/name');
  const appId = values.get('GITHUB_APP_ID') as string | undefined;
  const privateKey = values.get('GITHUB_APP_PRIVATE_KEY') as string | undefined;
  const installationId = values.get('GITHUB_APP_INSTALLATION_ID') as number | undefined;
  const token = values.get('GITHUB_TOKEN') as string | undefined;
  const app = appId !== undefined || privateKey !== undefined || installationId !== undefined;
  if (app && (appId === undefined || privateKey === undefined || installationId === undefined)) {
    problems.push('GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID go together: set all three, or use GITHUB_TOKEN');
  }
  if (!app && token === undefined) problems.push('GITOPS_DRIVER=github needs GITHUB_TOKEN or a GitHub App (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID)');
  const writesPerHour = values.get('GITHUB_WRITES_PER_HOUR') as number;
  const burst = values.get('GITHUB_WRITE_BURST') as number;
  // In any minute the bucket lets through its size plus a minute of refill (github-budget.ts).
  if (burst >= writesPerHour) problems.push(`GITHUB_WRITE_BURST (${burst}) must be below GITHUB_WRITES_PER_HOUR (${writesPerHour})`);
  else if (burst + (writesPerHour - burst) / 60 > 80) problems.push(`GITHUB_WRITE_BURST (${burst}) plus a minute of refill passes GitHub's 80 content-creating requests a minute`);
  if (problems.length > 0) throw new ConfigError(problems);
  const [owner, repo] = repository!.split('/') as [string, string];
  return {
    owner,
    repo,
    apiUrl: values.get('GITHUB_API_URL') as string,
    mergeMethods: [...new Set((values.get('GITHUB_MERGE_METHODS') as string).split(',') as ('merge' | 'squash' | 'rebase')[])],
    auth: app ? { appId: appId!, privateKey: privateKey!.replace(/\\n/g, '\n'), installationId: installationId! } : { token: token! },
    budget: { writesPerHour, burst, primaryReserve: values.get('GITHUB_PRIMARY_RESERVE') as number },
  };
}

/** `NAME="value"` as an error may show it: a secret's value never, a URL's credentials never. */
function shownValue(variable: Variable, text: string): string {
  if (variable.secret === 'value') return `${variable.name} (a secret, not shown; ${text.length} characters)`;
  if (variable.secret === 'credentials') return `${variable.name}=${JSON.stringify(withoutCredentials(text))}`;
  return `${variable.name}=${JSON.stringify(text)}`;
}

/**
 * `text` with a URL's password masked (`user:***@`), or its user when there is no password
 * (`https://<token>@host` puts the secret there). A text that does not parse as a URL (an
 * unescaped `/` or `@` in the password) has everything between the scheme and the last `@`
 * masked, so its credentials stay hidden too.
 */
export function withoutCredentials(text: string): string {
  const at = text.lastIndexOf('@');
  if (at < 0) return text;
  try {
    const parsed = new URL(text);
    // The userinfo must be what the last @ ends; an @ left in the path means the parser split elsewhere.
    if ((parsed.username || parsed.password) && !`${parsed.pathname}${parsed.search}${parsed.hash}`.includes('@')) {
      if (parsed.password) parsed.password = '***';
      else parsed.username = '***';
      return parsed.toString();
    }
  } catch {
    // not a URL: mask by position below
  }
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(text)?.[0] ?? '';
  return `${scheme}***${text.slice(at)}`;
}

/** The rule a schema states, in words an operator reads (TypeBox keywords as set above). */
function describeExpected(schema: TSchema): string {
  if (schema.anyOf) return `expected one of ${(schema.anyOf as TSchema[]).map((s) => JSON.stringify(s.const)).join(', ')}`;
  if (schema.type === 'integer') {
    const bounds = [schema.minimum !== undefined ? `>= ${schema.minimum}` : '', schema.maximum !== undefined ? `<= ${schema.maximum}` : ''].filter(Boolean);
    return `expected an integer${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  }
  if (typeof schema.description === 'string') return `expected ${schema.description}`;
  if (schema.pattern) return `expected a string matching ${schema.pattern}`;
  if (typeof schema.minLength === 'number' && schema.minLength > 1) return `expected at least ${schema.minLength} characters`;
  return 'expected a non-empty string';
}

/** `kind=policy,kind=policy` (already checked against the variable's pattern). */
function parseMergePolicyByKind(text: string): Partial<Record<ChangeKind, MergePolicy>> {
  if (!text) return {};
  return Object.fromEntries(text.split(',').map((entry) => entry.split('=') as [ChangeKind, MergePolicy]));
}
