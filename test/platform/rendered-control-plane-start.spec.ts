import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { QueryTypes } from 'sequelize';
import YAML from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.ts';
import { createSequelize } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { renderPlatform } from '../../src/gitops/render/change-renderer.ts';
import type { PlatformBootstrap } from '../../src/gitops/render/change-payloads.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { PLATFORM_BOOTSTRAP } from '../support/change-fixtures.ts';
import { createScratchDatabase } from '../support/database.ts';
import { freePort } from '../support/free-port.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { containerEnvironment, syncExternalSecret, type KubernetesObject, type SecretStoreContents } from '../support/kubernetes-environment.ts';
import { startTestIssuer, type TestIssuer } from '../support/oidc-issuer.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const CONTROL_PLANE_DIR = 'platform/base/cmp-control-plane';

/**
 * Variables the rendered manifests leave to their defaults on purpose, and why. Every other row
 * of CONFIG_VARIABLES must have a source in the ConfigMap or the ExternalSecret: a setting
 * added to the config table without one fails here until it is rendered or listed below.
 */
const DEFAULT_IN_CLUSTER: Record<string, string> = {
  HOST: '0.0.0.0: every interface of the pod',
  DATA_DIR: 'used by embedded PostgreSQL and the local driver only; neither runs in a cluster',
  DATABASE_POOL_MAX: 'the default per replica',
  EMBEDDED_POSTGRES_PORT: 'DATABASE_URL is set',
  BODY_LIMIT_BYTES: 'the default',
  GITOPS_LOCAL_PATH: 'GITOPS_DRIVER=github',
  GITOPS_LOCAL_PUSH_URL: 'GITOPS_DRIVER=github',
  GITOPS_MERGE_POLICY: 'pull-request, the default: people review what the service proposes',
  GITOPS_MERGE_POLICY_BY_KIND: 'none',
  GITOPS_BATCH_WINDOW_MS: 'the default',
  GITOPS_BATCH_MAX: 'the default',
  GITOPS_WORKER_LEASE_MS: 'the default',
  GITHUB_TOKEN: 'from the store with a token; with a GitHub App the App authenticates instead',
  GITHUB_APP_ID: 'rendered with a GitHub App only',
  GITHUB_APP_PRIVATE_KEY: 'from the store with a GitHub App only',
  GITHUB_APP_INSTALLATION_ID: 'rendered with a GitHub App only',
  GITHUB_MERGE_METHODS: 'the default: the driver learns what the repository allows',
  GITHUB_WRITES_PER_HOUR: "the default, below GitHub's limit",
  GITHUB_WRITE_BURST: 'the default',
  GITHUB_PRIMARY_RESERVE: 'the default',
  OIDC_ALGORITHMS: "the default, Keycloak's RS256 among them",
  OIDC_ADMIN_ROLE: 'the default realm role, platform-admin',
  IDEMPOTENCY_KEY_RETENTION_HOURS: 'the default',
  BILLING_TRIAL_CURRENCY: 'the default',
  BILLING_TRIAL_CREDIT_MINOR: 'the default',
  BILLING_HOLD_TTL_SECONDS: 'the default',
  METERING_INTERVAL_MS: 'the default',
  BILLING_MEMBER_HOLD_MAX_MINOR: 'the default cap on what one member may hold at once',
  BILLING_MEMBER_HOLD_MAX_SECONDS: "the default cap on a member hold's lifetime",
  GITHUB_WEBHOOK_ADDITIONAL_SECRETS: 'only while rotating GITHUB_WEBHOOK_SECRET',
  RECONCILE_INTERVAL_MS: 'the default',
  INSTANCE_PROGRESS_DEADLINE_SECONDS: 'the default',
  KUBECONFIG: "unset: the in-cluster config of the pod's ServiceAccount",
  SYNC_SIMULATOR: 'off, the default with DATABASE_URL',
  GITOPS_LOCAL_SIGNING_KEY: 'GITOPS_DRIVER=github: GitHub signs what the App creates',
  GITOPS_REASON_REQUIRED_FOR: "none: a reason is optional until a site's policy says otherwise",
  GITOPS_BATCH_COMMITS: "the default, per-org-commits: each org's history in Git shows only itself",
  KEYCLOAK_TIMEOUT_MS: 'the default, well below the lease the mirror takes per operation',
  KEYCLOAK_RECONCILE_INTERVAL_MS: 'the default: a hand edit in Keycloak is corrected within minutes',
  SALEOR_CREDIT_SKU: "the default, gsv-credit: the variant the site's Saleor sells as credit (README \"Saleor top-ups\")",
  SALEOR_CREDIT_MINOR_PER_UNIT: 'the default: one unit credits 100 minor units',
  SALEOR_CREDIT_CURRENCY: 'the default, EUR, the trial credit\'s currency too (BILLING_TRIAL_CURRENCY)',
  SALEOR_RECONCILE_INTERVAL_MS: 'the default: a lost webhook is made up for within the hour',
};

/** Writes the rendered files under a temporary root and builds one directory as Argo CD would: `kubectl kustomize`. */
async function kustomizeBuild(files: { path: string; content: string }[], dir: string): Promise<KubernetesObject[]> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-platform-'));
  try {
    for (const file of files) {
      await fs.mkdir(path.dirname(path.join(root, file.path)), { recursive: true });
      await fs.writeFile(path.join(root, file.path), file.content);
    }
    const { stdout } = await run('kubectl', ['kustomize', path.join(root, dir)], { maxBuffer: 16 * 1024 * 1024 });
    return YAML.parseAllDocuments(stdout).map((document) => document.toJS() as KubernetesObject);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

function written(files: ReturnType<typeof renderPlatform>): { path: string; content: string }[] {
  return files.filter((f): f is { path: string; content: string } => 'content' in f);
}

/** The Dockerfile's instructions per stage (continuation lines joined, comments dropped). */
function dockerfileStages(text: string): { instruction: string; args: string }[][] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages: { instruction: string; args: string }[][] = [];
  for (const line of lines) {
    const [, instruction, args] = /^\s*(\S+)\s+(.*)$/.exec(line)!;
    if (instruction!.toUpperCase() === 'FROM') stages.push([]);
    stages.at(-1)?.push({ instruction: instruction!.toUpperCase(), args: args!.trim() });
  }
  return stages;
}

interface Image {
  dir: string;
  /** Removes the copy (and a fresh install with it). */
  remove(): Promise<unknown>;
  user: string;
  env: Record<string, string>;
  command: string[];
}

/**
 * The image without Docker: a scratch copy of what the Dockerfile copies, with its production
 * install (the deps stage's `npm ci`, run in the copy), its ENV, USER and CMD. Outside the
 * repository, so that nothing resolves from the repository's node_modules (devDependencies).
 */
async function buildImageCopy(): Promise<Image> {
  const stages = dockerfileStages(await fs.readFile(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const [deps, final] = [stages[0]!, stages.at(-1)!];
  const install = deps.find((step) => step.instruction === 'RUN' && step.args.startsWith('npm ci'));
  assert.ok(install, 'the deps stage installs with npm ci');
  assert.match(install.args, /--omit=dev/, 'production dependencies only');
  const copied = deps.filter((s) => s.instruction === 'COPY').flatMap((step) => step.args.split(/\s+/).slice(0, -1));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-image-'));
  const dependencies = await installedDependencies(copied, install.args);
  await fs.symlink(path.join(dependencies.dir, 'node_modules'), path.join(dir, 'node_modules'));
  for (const step of final.filter((s) => s.instruction === 'COPY' && !s.args.startsWith('--from'))) {
    const parts = step.args.split(/\s+/);
    for (const source of parts.slice(0, -1)) await fs.cp(path.join(ROOT, source), path.join(dir, source), { recursive: true });
  }
  const env: Record<string, string> = {};
  for (const step of final.filter((s) => s.instruction === 'ENV')) {
    for (const pair of step.args.split(/\s+/)) {
      const [name, ...value] = pair.split('=');
      env[name!] = value.join('=');
    }
  }
  const user = final.findLast((s) => s.instruction === 'USER')?.args ?? 'root';
  const cmd = final.findLast((s) => s.instruction === 'CMD')!;
  return { dir, user, env, command: JSON.parse(cmd.args) as string[], remove: () => Promise.all([dir, ...(dependencies.fresh ? [dependencies.dir] : [])].map((d) => fs.rm(d, { recursive: true, force: true }))) };
}

/**
 * The deps stage: its COPY sources and its `npm ci`, in a directory of their own outside the
 * repository. CI installs afresh on every run (CI=true); elsewhere the install is kept per
 * contents of those files and that command, so a developer's machine installs once per lockfile.
 */
async function installedDependencies(sources: string[], command: string): Promise<{ dir: string; fresh: boolean }> {
  const hash = createHash('sha256').update(command);
  for (const source of sources) hash.update(source).update(await fs.readFile(path.join(ROOT, source)));
  const kept = path.join(os.tmpdir(), `cp-image-deps-${hash.digest('hex').slice(0, 16)}`);
  const fresh = process.env.CI === 'true';
  if (!fresh && (await fs.stat(path.join(kept, 'node_modules', '.package-lock.json')).then(() => true, () => false))) return { dir: kept, fresh };
  const building = await fs.mkdtemp(`${kept}-building-`);
  for (const source of sources) await fs.cp(path.join(ROOT, source), path.join(building, source));
  await run('npm', command.split(/\s+/).slice(1), { cwd: building, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? building }, maxBuffer: 16 * 1024 * 1024 });
  if (fresh) return { dir: building, fresh };
  await fs.rm(kept, { recursive: true, force: true });
  await fs.rename(building, kept);
  return { dir: kept, fresh };
}

describe('the rendered control-plane manifests start the service', function () {
  // The install: about a minute on a quiet machine, several on a busy one.
  this.timeout(600_000);
  let catalog: TemplateCatalog;
  let github: GithubDouble;
  let issuer: TestIssuer;
  let database: { url: string; drop(): Promise<void> };
  let image: Image;
  let objects: KubernetesObject[];
  let payload: PlatformBootstrap;
  let child: ChildProcess | undefined;
  const store: SecretStoreContents = {};

  before(async () => {
    catalog = await loadTemplateCatalog();
    github = await startGithubDouble({ initialFiles: Object.fromEntries((await readInitialLayout()).map((f) => [f.path, f.content])) });
    issuer = await startTestIssuer();
    database = await createScratchDatabase('rendered_start');
    // The bootstrap an operator runs, pointed at the doubles: GitHub Enterprise's API URL and the realm.
    payload = {
      ...PLATFORM_BOOTSTRAP,
      github: { repository: `${github.owner}/${github.repo}`, apiUrl: github.url },
      oidc: { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: issuer.jwksUrl },
    };
    // What the operator puts into Vault at cmp/control-plane (README "Deploy to Kubernetes").
    store['cmp/control-plane'] = {
      'database-url': database.url,
      'github-token': 'ghs_rendered_start_fixture',
      'github-webhook-secret': 'rendered-start-webhook-secret',
      'argocd-webhook-token': 'rendered-start-argocd-token-0123456789',
      'keycloak-client-secret': 'rendered-start-mirror-secret',
      'saleor-app-token': 'rendered-start-saleor-app-token',
    };
    [objects, image] = await Promise.all([kustomizeBuild(written(renderPlatform(catalog, payload)), CONTROL_PLANE_DIR), buildImageCopy()]);
  });
  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    await github?.close();
    await issuer?.close();
    await database?.drop();
    await image?.remove();
  });

  const find = (kind: string, name = 'cmp-control-plane') => {
    const object = objects.find((o) => o.kind === kind && o.metadata.name === name);
    assert.ok(object, `${kind} ${name} is rendered`);
    return object;
  };
  const podSpec = () => (find('Deployment').spec as { template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } }).template;
  const environment = () =>
    containerEnvironment(find('Deployment'), 'control-plane', [...objects, syncExternalSecret(find('ExternalSecret'), store), syncExternalSecret(find('ExternalSecret', 'cmp-control-plane-saleor'), store)]);

  it('gives every row of the config table a rendered source or a reason to keep its default', () => {
    const env = environment();
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    for (const name of Object.keys(env)) assert.ok(known.has(name as never), `${name} is rendered but is not a variable of src/config.ts`);
    const unsourced = CONFIG_VARIABLES.map((v) => v.name).filter((name) => !(name in env) && !(name in DEFAULT_IN_CLUSTER));
    assert.deepEqual(unsourced, [], 'variables with neither a source in the ConfigMap or ExternalSecret nor an entry in DEFAULT_IN_CLUSTER');
    const config = loadConfig(env);
    assert.equal(config.gitops.driver, 'github');
    assert.ok(config.oidc, 'OIDC is on');
    assert.equal(config.webhooks.githubSecrets.length, 1);
    assert.ok(config.webhooks.argocdToken);
    assert.ok(config.databaseUrl);
    assert.ok(config.shutdownTimeoutMs < Number(podSpec().spec.terminationGracePeriodSeconds) * 1000, 'the drain ends before SIGKILL');
  });

  it("turns on the membership mirror against the rendered realm's client and Saleor top-ups against the rendered Saleor", () => {
    const config = loadConfig(environment());
    assert.deepEqual(
      { ...config.keycloak, timeoutMs: undefined, reconcileIntervalMs: undefined },
      { url: `https://${payload.ssoHost}`, realm: 'gsv', clientId: 'cmp-membership-mirror', clientSecret: 'rendered-start-mirror-secret', timeoutMs: undefined, reconcileIntervalMs: undefined },
    );
    assert.equal(config.saleor?.apiUrl, `https://${payload.commerceHost}/graphql/`);
    assert.equal(config.saleor?.appToken, 'rendered-start-saleor-app-token');
    const keys = (find('ExternalSecret').spec as { data: { secretKey: string; remoteRef: { key: string; property: string } }[] }).data;
    assert.deepEqual(keys.find((d) => d.secretKey === 'KEYCLOAK_CLIENT_SECRET')!.remoteRef, { key: 'cmp/control-plane', property: 'keycloak-client-secret' });
    assert.ok(!keys.some((d) => d.secretKey === 'SALEOR_APP_TOKEN'), 'not in the Secret the pod cannot start without');
  });

  it('starts before the Saleor app exists: its token is an optional Secret, which ESO does not write while the store lacks it', () => {
    const { 'saleor-app-token': _token, ...withoutToken } = store['cmp/control-plane']!;
    const early = { 'cmp/control-plane': withoutToken };
    assert.throws(() => syncExternalSecret(find('ExternalSecret', 'cmp-control-plane-saleor'), early), /has no property saleor-app-token/);
    const env = containerEnvironment(find('Deployment'), 'control-plane', [...objects, syncExternalSecret(find('ExternalSecret'), early)]);
    assert.equal(env.SALEOR_APP_TOKEN, undefined);
    const config = loadConfig(env);
    assert.equal(config.saleor?.apiUrl, `https://${payload.commerceHost}/graphql/`, 'the webhook receiver is on');
    assert.equal(config.saleor?.appToken, undefined, 'the reconciler waits for the token');
  });

  it("with a site's own Keycloak and Saleor, or none: the mirror and top-ups follow the bootstrap's settings", async () => {
    const site = await kustomizeBuild(
      written(renderPlatform(catalog, { ...payload, without: ['sso', 'commerce'], keycloak: { url: 'https://id.example.org', realm: 'staff', clientId: 'cmp-mirror' }, saleorApiUrl: 'https://shop.example.net/graphql/' })),
      CONTROL_PLANE_DIR,
    );
    const siteMap = (site.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> }).data;
    assert.deepEqual([siteMap.KEYCLOAK_URL, siteMap.KEYCLOAK_REALM, siteMap.KEYCLOAK_CLIENT_ID, siteMap.SALEOR_API_URL], ['https://id.example.org', 'staff', 'cmp-mirror', 'https://shop.example.net/graphql/']);
    const none = await kustomizeBuild(written(renderPlatform(catalog, { ...payload, without: ['sso', 'commerce'] })), CONTROL_PLANE_DIR);
    const externalSecret = none.find((o) => o.kind === 'ExternalSecret')!;
    assert.deepEqual(none.filter((o) => o.kind === 'ExternalSecret').map((o) => o.metadata.name), ['cmp-control-plane'], 'no Saleor token to read');
    const env = containerEnvironment(none.find((o) => o.kind === 'Deployment')!, 'control-plane', [...none, syncExternalSecret(externalSecret, store)]);
    for (const name of ['KEYCLOAK_URL', 'KEYCLOAK_CLIENT_SECRET', 'SALEOR_API_URL', 'SALEOR_APP_TOKEN']) assert.equal(env[name], undefined, name);
    const config = loadConfig(env);
    assert.equal(config.keycloak, undefined);
    assert.equal(config.saleor, undefined);
    assert.throws(() => renderPlatform(catalog, { ...payload, keycloak: { url: 'https://id.example.org', realm: 'staff', clientId: 'x' } }), /sso is rendered, which defines keycloak itself/);
    assert.throws(() => renderPlatform(catalog, { ...payload, saleorApiUrl: 'https://shop.example.net/graphql/' }), /commerce is rendered, which defines saleorApiUrl itself/);
  });

  it('with a GitHub App: the ConfigMap names the App and the store gives its key, not a token', async () => {
    const withApp = await kustomizeBuild(written(renderPlatform(catalog, { ...payload, github: { ...payload.github, app: { appId: '1234', installationId: 5678 } } })), CONTROL_PLANE_DIR);
    const externalSecret = withApp.find((o) => o.kind === 'ExternalSecret' && o.metadata.name === 'cmp-control-plane')!;
    const keys = (externalSecret.spec as { data: { secretKey: string }[] }).data.map((d) => d.secretKey).sort();
    assert.deepEqual(keys, ['ARGOCD_WEBHOOK_TOKEN', 'DATABASE_URL', 'GITHUB_APP_PRIVATE_KEY', 'GITHUB_WEBHOOK_SECRET', 'KEYCLOAK_CLIENT_SECRET']);
    const appStore = { 'cmp/control-plane': { ...store['cmp/control-plane'], 'github-app-private-key': '-----BEGIN PRIVATE KEY-----\\nfixture\\n-----END PRIVATE KEY-----' } };
    const env = containerEnvironment(withApp.find((o) => o.kind === 'Deployment')!, 'control-plane', [...withApp, syncExternalSecret(externalSecret, appStore)]);
    assert.deepEqual(loadConfig(env).gitops.github!.auth, { appId: '1234', installationId: 5678, privateKey: '-----BEGIN PRIVATE KEY-----\nfixture\n-----END PRIVATE KEY-----' });
  });

  it("runs as the image's numeric user, non-root, with the ServiceAccount the RoleBinding names", () => {
    const spec = podSpec().spec as { securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number }; serviceAccountName: string };
    const [uid, gid] = image.user.split(':');
    assert.match(image.user, /^[0-9]+(:[0-9]+)?$/, `USER ${image.user} must be numeric: the kubelet refuses runAsNonRoot with a user name`);
    assert.notEqual(uid, '0');
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.securityContext.runAsUser, Number(uid));
    if (gid !== undefined) assert.equal(spec.securityContext.runAsGroup, Number(gid));
    find('ServiceAccount', spec.serviceAccountName);
  });

  it('selects its own pods in the Service, the PodDisruptionBudget, the NetworkPolicy and the spread over nodes', () => {
    const labels = podSpec().metadata.labels;
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(matches((find('Service').spec as { selector: Record<string, string> }).selector));
    const budget = find('PodDisruptionBudget').spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    assert.ok(matches(budget.selector.matchLabels));
    const replicas = (find('Deployment').spec as { replicas: number }).replicas;
    assert.ok(budget.minAvailable >= 1 && budget.minAvailable < replicas, 'a drain may evict one replica, never all');
    assert.ok(matches((find('NetworkPolicy').spec as { podSelector: { matchLabels: Record<string, string> } }).podSelector.matchLabels));
    const spread = podSpec().spec.topologySpreadConstraints as { topologyKey: string; whenUnsatisfiable: string; labelSelector: { matchLabels: Record<string, string> } }[];
    const perNode = spread.find((c) => c.topologyKey === 'kubernetes.io/hostname');
    assert.ok(perNode && perNode.whenUnsatisfiable === 'DoNotSchedule' && matches(perNode.labelSelector.matchLabels));
  });

  it('starts from that environment, with production dependencies only, and its probes answer: /readyz 200 against PostgreSQL and GitHub', async () => {
    const env = environment();
    const container = (podSpec().spec.containers as { name: string; ports: { name: string; containerPort: number }[]; readinessProbe: Probe; livenessProbe: Probe; startupProbe: Probe }[])[0]!;
    type Probe = { httpGet: { path: string; port: string } };
    const http = container.ports.find((p) => p.name === 'http')!;
    assert.equal(env.PORT, String(http.containerPort), 'the service listens on the port the probes and the Service name');
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) assert.equal(probe.httpGet.port, 'http');
    // The only departures from the pod: a free loopback port (a pod has its own network), a HOME
    // for the scratch user, and PATH from this machine (the image's comes from its base image).
    const port = await freePort();
    child = spawn(process.execPath, image.command.slice(1), {
      cwd: image.dir,
      env: { ...image.env, ...env, PATH: process.env.PATH ?? '', HOME: image.dir, HOST: '127.0.0.1', PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(image.command[0], 'node');
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 90_000;
    let ready: Response | undefined;
    while (Date.now() < deadline && child.exitCode === null) {
      ready = await fetch(`${url}${container.readinessProbe.httpGet.path}`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      if (ready?.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(ready?.status, 200, `readiness never answered 200 (exit code ${child.exitCode}):\n${output}`);
    assert.deepEqual(await ready.json(), { status: 'ok', checks: { database: 'ok', gitops: 'ok' } }, 'GitHub answered the driver too, not merely degraded');
    for (const probe of [container.livenessProbe, container.startupProbe]) assert.equal((await fetch(`${url}${probe.httpGet.path}`)).status, 200, probe.httpGet.path);
    assert.ok(github.calls.some((c) => c.route.startsWith('GET /repos/{owner}/{repo}/')), `the service read the repository the ConfigMap names: ${JSON.stringify(github.calls)}`);

    // Every secret from the store is the one the service checks: a user's JWT from the realm, GitHub's signature, Argo CD's bearer.
    const jwt = await issuer.sign({ sub: 'rendered-start-user', preferred_username: 'operator' });
    assert.equal((await fetch(`${url}/offerings`, { headers: { authorization: `Bearer ${jwt}` } })).status, 200);
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const signature = `sha256=${createHmac('sha256', store['cmp/control-plane']!['github-webhook-secret']!).update(ping).digest('hex')}`;
    const hook = await fetch(`${url}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signature }, body: ping });
    assert.equal(hook.status, 202, await hook.text());
    const argocd = (token: string) => fetch(`${url}/webhooks/argocd`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{}' });
    assert.equal((await argocd('not-the-token-at-all-0000')).status, 401);
    assert.equal((await argocd(store['cmp/control-plane']!['argocd-webhook-token']!)).status, 400, 'the bearer passed; the empty body is refused');

    // The mirror is on, and the rendered Keycloak is not there (no Keycloak runs here): a new
    // workspace queues its groups, the mirror's attempt fails, and neither the API nor
    // readiness waits for Keycloak (README "Keycloak follows membership").
    const workspace = await fetch(`${url}/orgs/auto`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(workspace.status, 201, await workspace.text());
    const sequelize = createSequelize({ url: database.url, poolMax: 1, logger: createLogger('silent') });
    try {
      const attempted = async () =>
        sequelize.query<{ status: string; attempts: number; last_error: string | null }>('SELECT status, attempts, last_error FROM keycloak_membership_ops', { type: QueryTypes.SELECT });
      let ops = await attempted();
      const tried = Date.now() + 60_000;
      while (Date.now() < tried && !ops.some((op) => op.attempts > 0)) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        ops = await attempted();
      }
      assert.ok(ops.length > 0 && ops.every((op) => op.status === 'pending') && ops.some((op) => op.attempts > 0 && op.last_error), `the mirror tried Keycloak and keeps the work: ${JSON.stringify(ops)}\n${output.slice(-2000)}`);
    } finally {
      await sequelize.close();
    }
    const stillReady = await fetch(`${url}${container.readinessProbe.httpGet.path}`);
    assert.equal(stillReady.status, 200, 'readiness does not depend on Keycloak');

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => (child!.exitCode !== null ? resolve(child!.exitCode) : child!.once('exit', resolve)));
    assert.equal(code, 0, `SIGTERM drains and exits 0:\n${output.slice(-2000)}`);
  });
});
