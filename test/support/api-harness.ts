import { QueryTypes } from 'sequelize';
import type { ChangeKind } from '../../src/domain/changes/change-kinds.ts';
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import type { Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { createAuthenticate } from '../../src/api/auth/authenticate.ts';
import { createOidcVerifier } from '../../src/api/auth/oidc-verifier.ts';
import { buildOpenApiDocument } from '../../src/api/openapi.ts';
import { ProblemSchema } from '../../src/api/problem.ts';
import type { RouteSpec } from '../../src/api/route.ts';
import { billingRoutes } from '../../src/api/routes/billing-routes.ts';
import { catalogRoutes } from '../../src/api/routes/catalog-routes.ts';
import { instanceRoutes } from '../../src/api/routes/instance-routes.ts';
import { workspaceRoutes } from '../../src/api/routes/workspace-routes.ts';
import { tokenRoutes } from '../../src/api/routes/token-routes.ts';
import { generateApiToken, upsertApiToken } from '../../src/db/api-tokens.ts';
import { seedCatalog } from '../../src/domain/catalog-seed.ts';
import { ParametersValidator } from '../../src/domain/parameters-schema.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createAjv, type ValidateFunction } from '../../src/validation.ts';
import { createTestSequelize } from './database.ts';
import { listen } from './http.ts';
import { createLocalGitops, type LocalGitops } from './gitops-harness.ts';
import { loadFixtureCatalog } from './fixture-catalog.ts';
import { startTestIssuer, type TestIssuer } from './oidc-issuer.ts';

export interface ApiResponse {
  status: number;
  headers: Headers;
  // Parsed JSON: tests read into it freely.
  body: Record<string, unknown> & { [key: string]: unknown };
}

export interface TestUser {
  subject: string;
  username?: string;
  email?: string;
  platformAdmin?: boolean;
}

/**
 * The workspace, catalog and instance API on a loopback port, against the test database, with
 * a JWKS-serving issuer. Every response is checked against the OpenAPI document generated from
 * the same routes (the documented schema for its status, or the Problem schema), and the
 * operations seen are recorded so a spec can assert it exercised them all.
 */
export interface ApiHarness {
  url: string;
  sequelize: Sequelize;
  /** The bare repository dry runs compare with (and workers a spec starts publish to). */
  gitops: LocalGitops;
  issuer: TestIssuer;
  routes: RouteSpec[];
  exercised: Set<string>;
  /** A new API token for `user`. */
  tokenFor(user: TestUser): Promise<string>;
  call(method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<ApiResponse>;
  close(): Promise<void>;
}

export async function startApiHarness(
  options: { moreRoutes?: (sequelize: Sequelize, gitops: LocalGitops) => RouteSpec[]; logTo?: NodeJS.WritableStream; reasonRequiredFor?: ChangeKind[]; mirrorToKeycloak?: boolean } = {},
): Promise<ApiHarness> {
  const sequelize = createTestSequelize(30);
  // A real bare repository: dry runs render against its base branch.
  const gitops = await createLocalGitops(sequelize);
  await seedCatalog(sequelize);
  const issuer = await startTestIssuer();
  const domain = {
    sequelize,
    mergePolicy: 'pull-request' as const,
    parameters: new ParametersValidator(),
    // Enough trial credit that specs about workspaces and instances never meet a 402.
    billing: { trialCurrency: 'EUR', trialCreditMinor: 1_000_000, holdTtlSeconds: 3600 },
    // The shipped catalog and test/fixtures/offerings: specs publish and order the fixtures' versions.
    preview: { repository: gitops.repository, catalog: await loadFixtureCatalog() },
    ...(options.reasonRequiredFor ? { reasonRequiredFor: options.reasonRequiredFor } : {}),
    mirrorToKeycloak: options.mirrorToKeycloak ?? false,
  };
  const routes = [
    ...workspaceRoutes(domain),
    ...catalogRoutes({ sequelize, catalog: domain.preview.catalog }),
    ...instanceRoutes(domain),
    ...billingRoutes({ sequelize, now: () => new Date(), defaultHoldTtlSeconds: domain.billing.holdTtlSeconds, memberHolds: { maxPendingMinor: 1_000_000, maxSeconds: 90 * 86_400 } }),
    ...tokenRoutes({ sequelize }),
    ...(options.moreRoutes?.(sequelize, gitops) ?? []),
  ];
  const authenticate = createAuthenticate({
    sequelize,
    verifyJwt: createOidcVerifier({ issuer: issuer.issuer, audience: issuer.audience, jwksUrl: issuer.jwksUrl, algorithms: ['RS256', 'ES256'], adminRole: 'platform-admin' }),
  });
  const app = createApp({ logger: options.logTo ? createLogger('debug', options.logTo) : createLogger('silent'), metrics: createMetrics({ collectDefaults: false }), bodyLimitBytes: 1 << 20, routes, authenticate, sequelize });
  const server = await listen(app);
  const document = buildOpenApiDocument(routes, { title: 'test', version: '0', description: 'test' }) as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, { content?: Record<string, { schema?: object }> }> }>> };
  const ajv = createAjv({ useDefaults: false });
  const problem = ajv.compile(JSON.parse(JSON.stringify(ProblemSchema)) as object);
  const compiled = new Map<string, ValidateFunction>();
  const templates = Object.keys(document.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
    // Literal segments win over parameters (/orgs/auto before /orgs/{org}).
    weight: template.split('/').filter((s) => !s.startsWith('{')).length,
  })).sort((a, b) => b.weight - a.weight);
  const exercised = new Set<string>();

  function check(method: string, path: string, response: ApiResponse, contentType: string): void {
    const pathname = path.split('?')[0]!;
    const lower = method.toLowerCase();
    const match = templates.find((t) => t.pattern.test(pathname) && document.paths[t.template]![lower]);
    assert.ok(match, `${method} ${pathname} is not in the OpenAPI document`);
    const operation = document.paths[match.template]![lower]!;
    exercised.add(operation.operationId);
    const documented = operation.responses[String(response.status)];
    if (!documented) {
      assert.ok(response.status >= 400, `${operation.operationId} answered ${response.status}, which the document does not list`);
      assert.match(contentType, /^application\/problem\+json/, `${operation.operationId} ${response.status} is not problem+json`);
      assert.ok(problem(response.body), `${operation.operationId} ${response.status}: not a Problem: ${ajv.errorsText(problem.errors)}`);
      return;
    }
    const schema = documented.content?.['application/json']?.schema;
    if (!schema) return;
    const key = `${operation.operationId} ${response.status}`;
    let validate = compiled.get(key);
    if (!validate) compiled.set(key, (validate = ajv.compile(schema)));
    assert.ok(validate(response.body), `${key}: the body does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(response.body)}`);
  }

  return {
    url: server.url,
    sequelize,
    gitops,
    issuer,
    routes,
    exercised,
    tokenFor: async (user) => {
      const token = generateApiToken();
      await upsertApiToken(sequelize, token, { name: `test-${randomUUID()}`, subject: user.subject, username: user.username, email: user.email, platformAdmin: user.platformAdmin ?? false });
      return token;
    },
    call: async (method, path, options = {}) => {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${server.url}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
      const text = await res.text();
      const response: ApiResponse = { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as ApiResponse['body']) : {} };
      check(method, path, response, res.headers.get('content-type') ?? '');
      return response;
    },
    close: async () => {
      await server.close();
      await issuer.close();
      await sequelize.close();
      await gitops.cleanup();
    },
  };
}

/** A unique user, so the tests of one spec, which share its database, never meet. */
/** A new user and its workspace (POST /orgs/auto), through the API. */
export async function userWithWorkspace(api: ApiHarness, prefix: string): Promise<{ token: string; org: string; orgId: string }> {
  const token = await api.tokenFor(uniqueUser(prefix));
  const workspace = await api.call('POST', '/orgs/auto', { token });
  return { token, org: workspace.body.slug as string, orgId: workspace.body.id as string };
}

export function uniqueUser(prefix = 'user', extra: Partial<TestUser> = {}): TestUser {
  const id = randomUUID().slice(0, 8);
  return { subject: `${prefix}-${id}`, username: `${prefix}-${id}`, email: `${prefix}-${id}@example.test`, ...extra };
}

/** Runs the worker until nothing is left to publish. */
export async function publishAll(api: ApiHarness): Promise<void> {
  while (await api.gitops.worker().runOnce());
}

/** The pull request number the worker recorded for a change. */
export async function pullRequestOf(api: ApiHarness, changeId: string): Promise<number> {
  const [row] = await api.sequelize.query<{ n: number }>('SELECT pull_request_number AS n FROM change_requests WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: changeId } });
  return row!.n;
}

/** Publishes, merges the change's pull request as a person would, and reads main back. */
export async function landChange(api: ApiHarness, changeId: string): Promise<void> {
  await publishAll(api);
  await api.gitops.repository.mergePullRequest(await pullRequestOf(api, changeId));
  await api.gitops.converge();
}
