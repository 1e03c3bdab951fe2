import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { startApiHarness, userWithWorkspace, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

/** `{ "a": { "a": … } }`, `depth` objects deep, as JSON text (JSON.stringify itself overflows at such depths). */
const nestedJson = (depth: number) => `${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}`;

const cursor = (at: string, id = '00000000-0000-4000-8000-000000000000') => Buffer.from(JSON.stringify([at, id]), 'utf8').toString('base64url');

/**
 * The hostile inputs that answered 500 (issue 14, part 4), each a 4xx problem+json that writes
 * nothing: a NUL character in any JSON string (PostgreSQL's jsonb refuses it, a text column
 * stored the two characters `\0`), bodies nested thousands of levels deep (structuredClone and
 * canonical JSON overflowed the stack), and forged page cursors whose date PostgreSQL rejects.
 */
describe('hostile input classes: NUL, deep nesting, forged cursors', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let owner: { token: string; org: string; orgId: string };
  before(async () => {
    api = await startApiHarness();
    owner = await userWithWorkspace(api, 'hostile');
  });
  after(() => api.close());

  const problem = (response: { status: number; headers: Headers }, status: number, label: string) => {
    assert.equal(response.status, status, label);
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/, label);
  };

  it('refuses a NUL character in any string of a body, a key included, and writes nothing', async () => {
    const bodies: [string, string, unknown][] = [
      ['a project name (text column)', `/orgs/${owner.org}/projects`, { slug: 'nul-name', name: 'a\u0000b' }],
      ['an instance parameter (jsonb)', '/instances', { org: owner.org, offering: 'runtime', name: 'nul-param', parameters: { size: 'small\u0000' } }],
      ['a parameter name', '/instances', { org: owner.org, offering: 'runtime', name: 'nul-key', parameters: { 'si\u0000ze': 'small' } }],
      ['a reason', '/instances', { org: owner.org, offering: 'runtime', name: 'nul-reason', reason: 'because\u0000' }],
    ];
    for (const [label, path, body] of bodies) {
      const response = await api.call('POST', path, { token: owner.token, body, headers: { 'Idempotency-Key': `nul-${label.replace(/\W/g, '')}` } });
      problem(response, 400, label);
      assert.match(JSON.stringify(response.body.errors), /NUL/, label);
    }
    const [project] = await api.sequelize.query("SELECT 1 FROM projects WHERE slug = 'nul-name'", { type: QueryTypes.SELECT });
    assert.equal(project, undefined);
    const [instance] = await api.sequelize.query("SELECT 1 FROM instances WHERE name LIKE 'nul-%'", { type: QueryTypes.SELECT });
    assert.equal(instance, undefined);
    // In a query or a path, too.
    problem(await api.call('GET', `/instances?org=${owner.org}%00`, { token: owner.token }), 400, 'query');
    problem(await api.call('GET', `/orgs/${owner.org}%00/projects`, { token: owner.token }), 400, 'path');
  });

  it('refuses bodies nested deeper than it reads, before anything walks them', async () => {
    for (const depth of [100, 5_000, 50_000]) {
      const response = await fetch(`${api.url}/instances`, {
        method: 'POST',
        headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json', 'idempotency-key': `deep-${depth}` },
        body: `{"org":${JSON.stringify(owner.org)},"offering":"runtime","name":"deep-${depth}","parameters":${nestedJson(depth)}}`,
      });
      problem(response, 400, `depth ${depth}`);
      assert.match(await response.text(), /nested deeper than/, `depth ${depth}`);
    }
    // What an honest body nests is far below the limit.
    const fine = await api.call('POST', '/instances', { token: owner.token, body: { org: owner.org, offering: 'runtime', name: 'shallow', parameters: JSON.parse(nestedJson(3)) }, headers: { 'Idempotency-Key': 'shallow' } });
    assert.equal(fine.status, 422, JSON.stringify(fine.body)); // validated against the offering's schema, not refused as too deep
  });

  it('refuses forged page cursors with a date PostgreSQL would reject', async () => {
    for (const at of ['1', '0000-01-01 00:00:00+00', '2026-13-01 00:00:00+00', '2026-02-30 00:00:00+00', '2026-01-01 24:00:01+00', 'Jan 1 10000', '+275760-09-13', '2026-01-01 00:00:00+99']) {
      problem(await api.call('GET', `/instances?cursor=${cursor(at)}`, { token: owner.token }), 400, at);
    }
    // A cursor the service issued still pages.
    const page = await api.call('GET', `/instances?limit=1&cursor=${cursor('2026-12-06 21:36:56.123456+00')}`, { token: owner.token });
    assert.equal(page.status, 200);
  });
});
