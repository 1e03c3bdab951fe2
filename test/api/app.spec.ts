import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { createApp } from '../../src/api/app.ts';
import { defineRoute, type RouteSpec } from '../../src/api/route.ts';
import { systemRoutes } from '../../src/api/routes/system-routes.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { listen, type Listening } from '../support/http.ts';

describe('HTTP foundation', () => {
  let server: Listening;
  let dependencyDown = false;
  let gitHostDown = false;

  before(async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const routes: RouteSpec[] = [];
    routes.push(
      ...systemRoutes({
        metrics,
        isDraining: () => false,
        readiness: [
          { name: 'database', check: async () => { if (dependencyDown) throw new Error('connection refused'); } },
          { name: 'gitops', critical: false, check: async () => { if (gitHostDown) throw new Error('GitHub answered 503'); } },
        ],
        info: { title: 'test', version: '0', description: 'test' },
        allRoutes: () => routes,
      }),
      defineRoute({
        method: 'post',
        path: '/things/:id',
        operationId: 'createThing',
        summary: 'A route with every kind of input.',
        tags: ['test'],
        access: 'public',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        query: Type.Object({ dryRun: Type.Optional(Type.Boolean()) }),
        body: Type.Object({ name: Type.String({ pattern: '^[a-z]+$' }), size: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
        responses: { 201: { description: 'created', schema: Type.Object({ id: Type.Integer(), name: Type.String(), dryRun: Type.Boolean() }) } },
        handler: ({ ctx, params, query, body }) => {
          ctx.status = 201;
          ctx.body = { id: params.id, name: body.name, dryRun: query.dryRun ?? false };
        },
      }),
    );
    server = await listen(createApp({ logger: createLogger('silent'), metrics, bodyLimitBytes: 1024, routes }));
  });
  after(() => server.close());

  const post = (path: string, body: string, contentType = 'application/json') =>
    fetch(server.url + path, { method: 'POST', headers: { 'content-type': contentType }, body });

  async function expectProblem(response: Response, status: number, code: string) {
    assert.equal(response.status, status);
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const problem = (await response.json()) as Record<string, unknown>;
    assert.equal(problem.status, status);
    assert.equal(problem.code, code);
    assert.equal(typeof problem.title, 'string');
    assert.equal(typeof problem.detail, 'string');
    assert.equal(problem.type, `https://control-plane.gsv.io/problems/${code}`);
    return problem;
  }

  it('serves a validated route with coerced path and query values', async () => {
    const response = await post('/things/7?dryRun=true', JSON.stringify({ name: 'abc' }));
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { id: 7, name: 'abc', dryRun: true });
  });

  it('answers an unknown route with 404 problem+json', async () => {
    await expectProblem(await fetch(`${server.url}/nowhere`), 404, 'not-found');
  });

  it('answers a known path with the wrong method with 405 and Allow', async () => {
    const response = await fetch(`${server.url}/healthz`, { method: 'DELETE' });
    assert.equal(response.headers.get('allow'), 'GET');
    await expectProblem(response, 405, 'method-not-allowed');
  });

  it('answers malformed JSON with 400', async () => {
    await expectProblem(await post('/things/1', '{"name": '), 400, 'bad-request');
  });

  it('answers a body over the limit with 413', async () => {
    await expectProblem(await post('/things/1', JSON.stringify({ name: 'a'.repeat(2000) })), 413, 'payload-too-large');
  });

  it('answers a non-JSON body with 415', async () => {
    await expectProblem(await post('/things/1', 'name=abc', 'application/x-www-form-urlencoded'), 415, 'unsupported-media-type');
  });

  it('reports every invalid field with a JSON pointer', async () => {
    const response = await post('/things/0?dryRun=maybe', JSON.stringify({ name: 'ABC', extra: 1, size: '3' }));
    const problem = await expectProblem(response, 400, 'validation-failed');
    const errors = problem.errors as { in: string; pointer: string }[];
    const where = errors.map((e) => `${e.in}:${e.pointer}`).sort();
    assert.deepEqual(where, ['body:/extra', 'body:/name', 'body:/size', 'path:/id', 'query:/dryRun']);
  });

  it('echoes a well-formed X-Request-Id and replaces a hostile one', async () => {
    const mine = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(mine.headers.get('x-request-id'), 'abc-123');
    const hostile = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'x'.repeat(300) } });
    assert.match(hostile.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('reports readiness and names the failing dependency', async () => {
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    dependencyDown = true;
    try {
      const problem = await expectProblem(await fetch(`${server.url}/readyz`), 503, 'service-unavailable');
      assert.deepEqual(problem.checks, { database: 'failed', gitops: 'ok' });
      assert.equal(problem.retryable, true);
    } finally {
      dependencyDown = false;
    }
    // A remote Git host down: still ready (webhooks keep arriving), and said so.
    gitHostDown = true;
    try {
      const degraded = await fetch(`${server.url}/readyz`);
      assert.equal(degraded.status, 200);
      assert.deepEqual(await degraded.json(), { status: 'ok', checks: { database: 'ok', gitops: 'degraded' } });
    } finally {
      gitHostDown = false;
    }
  });

  it('exposes HTTP latency histograms labelled by route template', async () => {
    await fetch(`${server.url}/healthz`);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/healthz",status_code="200"\}/);
    assert.match(text, /route="\/things\/:id"/);
  });

  it('serves a human-readable API page', async () => {
    const response = await fetch(`${server.url}/docs`);
    assert.match(response.headers.get('content-type') ?? '', /text\/html/);
    const html = await response.text();
    assert.match(html, /<code>\/things\/\{id\}<\/code>/);
  });
});
