import { tenantDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { startInProcessService, type InProcessService } from '../support/in-process-service.ts';
import { createCaller, type Caller } from '../support/scratch-service.ts';
import { prepareInstanceCaller } from '../support/instance-caller.ts';
import { fetchOpenApi, listOperations, type OpenApiOperation } from '../support/openapi-operations.ts';
import { runGit } from '../bench/synthetic-repository.ts';
import { forgedCursor, hostileBody, jsonText, MALFORMED_BODIES, nastyString, validBodyWith, withNul, wrongValue } from './hostile-input.ts';
import { newKey, signDetached, startSaleorDouble, type SaleorDouble } from '../support/saleor-double.ts';

const SEED = Number(process.env.FAULTS_SEED ?? 20261128);
const RUNS = Number(process.env.FAULTS_FUZZ_RUNS ?? 12);
const GITHUB_SECRET = 'fuzz-github-secret';
const ARGOCD_TOKEN = 'fuzz-argocd-token-0123456789';

interface Sent {
  label: string;
  status: number;
}

/**
 * Every operation in /openapi.json (new routes are covered without touching this file) and the
 * three webhooks, called by an authenticated member of one workspace with hostile paths, queries and
 * bodies: the service answers 4xx problem+json (or 2xx when the input happens to be valid),
 * never 5xx, and another workspace's rows and Git files stay exactly as they were.
 */
describe('hostile input on every endpoint (fast-check, seeded)', function () {
  this.timeout(900_000);
  let app: InProcessService;
  let victim: Caller;
  let attacker: Caller;
  let victimOrg: string;
  let attackerOrg: string;
  let victimInstanceId: string;
  let victimWallets: string[];
  let operations: OpenApiOperation[];
  let baseline: Snapshot;
  let saleor: SaleorDouble;
  const sent: Sent[] = [];

  before(async () => {
    saleor = await startSaleorDouble();
    app = await startInProcessService('fuzz', {
      SALEOR_API_URL: saleor.apiUrl,
      GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
      ARGOCD_WEBHOOK_TOKEN: ARGOCD_TOKEN,
      SYNC_SIMULATOR: 'false',
      RECONCILE_INTERVAL_MS: '3600000',
    });
    const admin = await createCaller(app.databaseUrl, 'fuzz-admin', true);
    victim = await createCaller(app.databaseUrl, 'fuzz-victim');
    attacker = await createCaller(app.databaseUrl, 'fuzz-attacker');
    const victimSide = await prepareInstanceCaller(app.url, victim, admin, 100_000);
    const attackerSide = await prepareInstanceCaller(app.url, attacker, admin, 100_000);
    victimOrg = victimSide.org;
    attackerOrg = attackerSide.org;
    victimWallets = victimSide.wallets;
    const created = await fetch(`${app.url}/instances`, {
      method: 'POST',
      headers: { ...victim.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ org: victimOrg, offering: victimSide.offering, name: 'victim-instance' }),
    });
    assert.equal(created.status, 202, await created.clone().text());
    victimInstanceId = ((await created.json()) as { id: string }).id;
    await waitForQuietWorker(app.databaseUrl);
    operations = listOperations(await fetchOpenApi(app.url));
    baseline = await snapshot(app, victimOrg);
  });

  after(async () => {
    await app?.close();
    await saleor?.close();
  });

  const victimValues = () => fc.constantFrom(victimOrg, victimInstanceId, ...victimWallets, 'victim-instance');
  const value = () => fc.oneof(nastyString, victimValues());

  async function send(label: string, path: string, init: RequestInit): Promise<Response> {
    const response = await fetch(`${app.url}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
    sent.push({ label, status: response.status });
    return response;
  }

  async function assertNoServerError(label: string, response: Response, expect4xx: boolean): Promise<void> {
    const text = await response.text();
    assert.ok(response.status < 500, `${label} answered ${response.status}: ${text.slice(0, 500)}`);
    if (expect4xx) assert.ok(response.status >= 400, `${label} answered ${response.status} to input it should refuse: ${text.slice(0, 300)}`);
    if (response.status >= 400) {
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/, `${label}: ${response.status} is not problem+json`);
      const problem = JSON.parse(text) as { status?: unknown; type?: unknown; code?: unknown; title?: unknown };
      assert.equal(problem.status, response.status, label);
      assert.equal(typeof problem.type, 'string', label);
      assert.equal(typeof problem.code, 'string', label);
    }
  }

  function fillPath(operation: OpenApiOperation, values: Record<string, string>): string {
    return operation.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodePathValue(values[name] ?? 'x'));
  }

  function headersFor(extra: Record<string, string> = {}): Record<string, string> {
    return { ...attacker.headers, ...extra };
  }

  it('covers every documented operation, the webhooks included', () => {
    const ids = operations.map((op) => `${op.method.toUpperCase()} ${op.path}`);
    assert.ok(ids.includes('POST /instances'), ids.join(', '));
    assert.ok(ids.includes('POST /webhooks/github') && ids.includes('POST /webhooks/argocd') && ids.includes('POST /webhooks/saleor'), ids.join(', '));
  });

  it('answers malformed, oversized and non-JSON bodies with 4xx problem+json on every operation that takes a body', async () => {
    for (const operation of operations.filter((op) => op.requestBodySchema)) {
      for (const malformed of MALFORMED_BODIES) {
        const label = `${operation.method.toUpperCase()} ${operation.path} with ${malformed.label}`;
        const path = fillPath(operation, { id: victimInstanceId, org: attackerOrg, slug: 'studio', version: '1.0.0' });
        const response = await send(label, path, {
          method: operation.method.toUpperCase(),
          headers: headersFor({ 'content-type': malformed.contentType }),
          body: malformed.body,
        });
        await assertNoServerError(label, response, true);
      }
    }
  });

  it('never answers 5xx to hostile path parameters, queries and bodies (property-based)', async () => {
    for (const operation of operations.filter((op) => !op.path.startsWith('/webhooks/'))) {
      const pathNames = operation.parameters.filter((p) => p.in === 'path').map((p) => p.name);
      const queryNames = operation.parameters.filter((p) => p.in === 'query').map((p) => p.name);
      const input = fc.record({
        path: fc.record(Object.fromEntries(pathNames.map((n) => [n, value()]))),
        query: fc.dictionary(fc.oneof(fc.constantFrom(...(queryNames.length ? queryNames : ['q'])), nastyString), fc.oneof(value(), wrongValue.map((v) => JSON.stringify(v) ?? 'undefined'), forgedCursor), { maxKeys: 3 }),
        body: operation.requestBodySchema ? hostileBody(operation.requestBodySchema).map((b) => injectVictim(b, victimOrg)) : fc.constant(undefined),
        idempotencyKey: fc.option(fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '.', '/', '%', ' ', '~'), minLength: 1, maxLength: 40 })),
      });
      const label = `${operation.method.toUpperCase()} ${operation.path}`;
      await fc.assert(
        fc.asyncProperty(input, async (args) => {
          const query = new URLSearchParams(Object.entries(args.query).map(([k, v]) => [k, String(v)] as [string, string])).toString();
          const path = fillPath(operation, args.path as Record<string, string>) + (query ? `?${query}` : '');
          const headers = headersFor({
            ...(args.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(args.idempotencyKey ? { 'idempotency-key': args.idempotencyKey } : {}),
          });
          const response = await send(label, path, {
            method: operation.method.toUpperCase(),
            headers,
            ...(args.body !== undefined ? { body: jsonText(args.body) } : {}),
          });
          await assertNoServerError(`${label} ${path} ${jsonText(args.body)?.slice(0, 300)}`, response, false);
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
    }
  });

  it('refuses a NUL in any string, nesting past 64 levels and forged page cursors with 4xx, in otherwise valid requests', async () => {
    const pathValues = { id: victimInstanceId, org: attackerOrg, slug: 'studio', version: '1.0.0', subject: 'someone' };
    for (const operation of operations.filter((op) => !op.path.startsWith('/webhooks/'))) {
      const label = `${operation.method.toUpperCase()} ${operation.path}`;
      const classes: [string, fc.Arbitrary<{ path: string; body?: string }>][] = [];
      const path = fillPath(operation, pathValues);
      if (operation.requestBodySchema) {
        for (const hostility of ['nul', 'deep'] as const) {
          classes.push([hostility, validBodyWith(operation.requestBodySchema, hostility).map((body) => ({ path, body: jsonText(body)! }))]);
        }
      }
      if (operation.parameters.some((p) => p.in === 'query' && p.name === 'cursor')) {
        classes.push(['forged cursor', forgedCursor.map((cursor) => ({ path: `${path}?cursor=${encodeURIComponent(cursor)}` }))]);
      }
      const pathNames = operation.parameters.filter((p) => p.in === 'path').map((p) => p.name);
      if (pathNames.length > 0) {
        classes.push(['NUL in the path', fc.constantFrom(...pathNames).map((name) => ({ path: fillPath(operation, { ...pathValues, [name]: withNul(pathValues[name as keyof typeof pathValues] ?? 'x') as string }) }))]);
      }
      for (const [hostility, input] of classes) {
        await fc.assert(
          fc.asyncProperty(input, fc.uuid(), async ({ path: target, body }, key) => {
            const response = await send(`${label} ${hostility}`, target, {
              method: operation.method.toUpperCase(),
              headers: headersFor({ ...(body !== undefined ? { 'content-type': 'application/json' } : {}), 'idempotency-key': key }),
              ...(body !== undefined ? { body } : {}),
            });
            await assertNoServerError(`${label} with ${hostility}: ${target} ${body?.slice(0, 300) ?? ''}`, response, true);
          }),
          { seed: SEED, numRuns: RUNS, endOnFailure: true },
        );
      }
    }
  });

  it('refuses unsigned, badly signed and unauthenticated webhook deliveries with 4xx', async () => {
    const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const goodSignature = `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`;
    const cases: [string, Record<string, string>, string][] = [
      ['no signature', {}, body],
      ['wrong secret', { 'x-hub-signature-256': `sha256=${createHmac('sha256', 'other').update(body).digest('hex')}` }, body],
      ['sha1 only', { 'x-hub-signature': `sha1=${createHmac('sha1', GITHUB_SECRET).update(body).digest('hex')}` }, body],
      ['body altered by one byte', { 'x-hub-signature-256': goodSignature }, body.replace('awesome', 'awesomE')],
      ['signature garbage', { 'x-hub-signature-256': 'sha256=../../etc/passwd' }, body],
    ];
    for (const [label, headers, payload] of cases) {
      const response = await send(`github ${label}`, '/webhooks/github', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': `fuzz-${label}`, ...headers },
        body: payload,
      });
      await assertNoServerError(`POST /webhooks/github ${label}`, response, true);
    }
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${ARGOCD_TOKEN}`, `Bearer ${ARGOCD_TOKEN}x`]) {
      const response = await send('argocd auth', '/webhooks/argocd', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: '{}',
      });
      await assertNoServerError(`POST /webhooks/argocd with ${authorization ?? 'no authorization'}`, response, true);
    }
    // Saleor: a real delivery with its signature missing, an HMAC, another RSA key under Saleor's kid, a body altered.
    const order = saleor.pay(saleor.createOrder({ orgId: victimOrg, creditUnits: 1000 }).id);
    const genuine = saleor.delivery('order_fully_paid', order.id);
    const attackerKey = await newKey();
    const saleorCases: [string, (h: Record<string, string>) => void, string][] = [
      ['no signature', (h) => delete h['Saleor-Signature'], genuine.body],
      ['hmac', (h) => (h['Saleor-Signature'] = createHmac('sha256', 'guess').update(genuine.body).digest('hex')), genuine.body],
      ['another key', (h) => (h['Saleor-Signature'] = signDetached(genuine.body, { kid: saleor.kid(), privateKey: attackerKey.privateKey })), genuine.body],
      ['body altered', () => {}, genuine.body.replace('"quantity": 1000', '"quantity": 9000')],
      ['signature garbage', (h) => (h['Saleor-Signature'] = '../../etc/passwd..x'), genuine.body],
      ['another Saleor', (h) => (h['Saleor-Api-Url'] = 'https://evil.example/graphql/'), genuine.body],
    ];
    for (const [label, edit, body] of saleorCases) {
      const headers = { ...genuine.headers };
      edit(headers);
      const response = await send(`saleor ${label}`, '/webhooks/saleor', { method: 'POST', headers, body });
      await assertNoServerError(`POST /webhooks/saleor ${label}`, response, true);
    }
  });

  it('never answers 5xx to correctly signed webhooks carrying hostile payloads', async () => {
    const events = fc.constantFrom('pull_request', 'push', 'ping', 'installation', 'issues', '../x', '');
    await fc.assert(
      fc.asyncProperty(events, hostileBody({ properties: { action: {}, number: {}, pull_request: {}, ref: {}, after: {}, commits: {}, repository: {} } }), fc.string({ unit: 'grapheme-ascii', maxLength: 36 }), async (event, payload, delivery) => {
        const body = jsonText(payload)!;
        const response = await send('github signed', '/webhooks/github', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-github-event': event,
            'x-github-delivery': delivery.replace(/[^\x20-\x7e]/g, '') || 'x',
            'x-hub-signature-256': `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`,
          },
          body,
        });
        await assertNoServerError(`signed github ${event} ${body.slice(0, 200)}`, response, false);
      }),
      { seed: SEED, numRuns: RUNS * 4, endOnFailure: true },
    );
    await fc.assert(
      fc.asyncProperty(hostileBody({ properties: { app: {}, application: {}, labels: {}, revision: {}, phase: {}, finishedAt: {}, health: {}, sync: {} } }), async (payload) => {
        const body = jsonText(injectVictim(payload, victimOrg))!;
        const response = await send('argocd signed', '/webhooks/argocd', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ARGOCD_TOKEN}` },
          body,
        });
        await assertNoServerError(`argocd ${body.slice(0, 200)}`, response, false);
      }),
      { seed: SEED, numRuns: RUNS * 4, endOnFailure: true },
    );
  });

  it('never answers 5xx to correctly signed Saleor deliveries carrying hostile payloads', async () => {
    const events = fc.constantFrom('order_fully_paid', 'order_refunded', 'order_fully_refunded', 'order_created', '../x', 'ORDER_FULLY_PAID');
    await fc.assert(
      fc.asyncProperty(events, hostileBody({ properties: { __typename: {}, issuedAt: {}, order: {}, errors: {} } }), async (event, payload) => {
        const delivery = saleor.signed(event, JSON.stringify(injectVictim(payload, victimOrg)));
        const response = await send('saleor signed', '/webhooks/saleor', { method: 'POST', headers: delivery.headers, body: delivery.body });
        await assertNoServerError(`signed saleor ${event} ${delivery.body.slice(0, 200)}`, response, false);
      }),
      { seed: SEED, numRuns: RUNS * 4, endOnFailure: true },
    );
  });

  it("left the other workspace's rows and every Git path outside the caller's tenant untouched", async () => {
    await waitForQuietWorker(app.databaseUrl);
    const now = await snapshot(app, victimOrg);
    assert.deepEqual(now.rows, baseline.rows, "the victim workspace's rows changed");
    assert.equal(now.main, baseline.main, 'the base branch moved');
    for (const [ref, sha] of Object.entries(baseline.refs)) assert.equal(now.refs[ref], sha, `${ref} moved`);
    for (const [ref, sha] of Object.entries(now.refs)) {
      if (baseline.refs[ref]) continue;
      const changed = (await runGit(['--git-dir', app.gitDir, 'diff', '--name-only', baseline.main, sha])).split('\n').filter(Boolean);
      const outside = changed.filter((file) => !file.startsWith(`${tenantDir(attackerOrg, 'bucketed')}/`));
      assert.deepEqual(outside, [], `${ref} touches paths outside ${tenantDir(attackerOrg, 'bucketed')}/`);
    }
    const statuses = new Map<number, number>();
    for (const s of sent) statuses.set(s.status, (statuses.get(s.status) ?? 0) + 1);
    // Printed so the README's Reliability section can quote the last run.
    process.stdout.write(`      ${sent.length} requests over ${operations.length} operations; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}\n`);
    assert.ok(sent.length > operations.length * RUNS, 'the suite sent fewer requests than planned');
  });
});

/** Percent-encodes a path segment; a lone surrogate goes out as the invalid UTF-8 bytes it stands for. */
function encodePathValue(value: string): string {
  return value.isWellFormed() ? encodeURIComponent(value) : `${encodeURIComponent(value.toWellFormed())}%ED%A0%80`;
}

/** Puts the victim's org slug into any `org` field, so scope checks get exercised, not just validation. */
function injectVictim(body: unknown, victimOrg: string): unknown {
  if (body && typeof body === 'object' && !Array.isArray(body) && 'org' in body && Math.random() < 0.5) {
    return { ...(body as Record<string, unknown>), org: victimOrg };
  }
  return body;
}

interface Snapshot {
  rows: Record<string, unknown[]>;
  main: string;
  refs: Record<string, string>;
}

async function snapshot(app: InProcessService, org: string): Promise<Snapshot> {
  const client = new pg.Client({ connectionString: app.databaseUrl });
  await client.connect();
  try {
    const orgId = (await client.query<{ id: string }>('SELECT id FROM organizations WHERE slug = $1', [org])).rows[0]!.id;
    const queries: Record<string, string> = {
      organizations: 'SELECT * FROM organizations WHERE id = $1',
      projects: 'SELECT * FROM projects WHERE organization_id = $1 ORDER BY id',
      teams: 'SELECT * FROM teams WHERE organization_id = $1 ORDER BY id',
      memberships: 'SELECT * FROM memberships WHERE organization_id = $1 ORDER BY id',
      instances: 'SELECT * FROM instances WHERE organization_id = $1 ORDER BY id',
      instance_events: 'SELECT e.* FROM instance_events e JOIN instances i ON i.id = e.instance_id WHERE i.organization_id = $1 ORDER BY e.id',
      change_requests: 'SELECT * FROM change_requests WHERE organization_id = $1 ORDER BY id',
      ledger_accounts: 'SELECT * FROM ledger_accounts WHERE organization_id = $1 ORDER BY id',
      billing_authorizations: 'SELECT a.* FROM billing_authorizations a JOIN ledger_accounts w ON w.id = a.wallet_id WHERE w.organization_id = $1 ORDER BY a.id',
      ledger_entries: 'SELECT e.* FROM ledger_entries e JOIN ledger_accounts w ON w.id = e.account_id WHERE w.organization_id = $1 ORDER BY e.id',
    };
    const rows: Record<string, unknown[]> = {};
    for (const [table, sql] of Object.entries(queries)) rows[table] = (await client.query(sql, [orgId])).rows;
    const refs: Record<string, string> = {};
    for (const line of (await runGit(['--git-dir', app.gitDir, 'for-each-ref', '--format=%(refname) %(objectname)'])).split('\n')) {
      const [ref, sha] = line.split(' ');
      if (ref && sha) refs[ref] = sha;
    }
    return { rows, main: refs['refs/heads/main'] ?? '', refs };
  } finally {
    await client.end();
  }
}

/**
 * Waits (bounded) until the change worker has no pending change left, so snapshots are stable.
 * Gives up quietly after the timeout: a build without a running worker leaves changes pending,
 * and then nothing moves them during the run either.
 */
async function waitForQuietWorker(databaseUrl: string, timeoutMs = 15_000): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM change_requests WHERE status = 'pending'");
      if (rows[0]!.n === '0') return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await client.end();
  }
}
