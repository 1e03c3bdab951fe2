import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { startApiHarness, uniqueUser, userWithWorkspace, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';
import { moveByFacts, observe } from '../support/instance-facts.ts';
import { SLUG_MAX } from '../../src/gitops/tenant-paths.ts';

/** The newest active studio version (templates/offerings/studio): what an instance that names none gets. */
const STUDIO = '2.0.0';

describe('instances', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let token: string;
  let org: string;
  let orgId: string;

  before(async () => {
    api = await startApiHarness();
    ({ token, org, orgId } = await userWithWorkspace(api, 'builder'));
  });
  after(() => api.close());

  const count = async (table: 'instances' | 'change_requests'): Promise<number> => {
    const [row] = await api.sequelize.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE organization_id = :orgId`, {
      type: QueryTypes.SELECT,
      replacements: { orgId },
    });
    return row!.n;
  };
  /** The defaults of a shipped version's parameters, read from the catalog the way a client would. */
  const defaultsOf = async (offering: string): Promise<Record<string, unknown>> => {
    const response = await api.call('GET', `/offerings/${offering}`, { token });
    const [latest] = response.body.versions as { parametersSchema: { properties: Record<string, { default: unknown }> } }[];
    return Object.fromEntries(Object.entries(latest!.parametersSchema.properties).map(([name, property]) => [name, property.default]));
  };
  /** Stands in for the GitOps worker and Argo CD: the instance is deployed and healthy. */
  const markReady = (id: string) => api.sequelize.query("UPDATE instances SET state = 'ready' WHERE id = :id", { type: QueryTypes.UPDATE, replacements: { id } });

  it('accepts an instance with defaults filled in, and writes its event and change in one go', async () => {
    const response = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'ide' } });
    assert.equal(response.status, 202);
    assert.equal(response.body.state, 'requested');
    assert.equal(response.body.project, 'default');
    assert.equal(response.body.version, STUDIO);
    const defaults = await defaultsOf('studio');
    assert.equal(defaults.size, 'small');
    assert.deepEqual(response.body.parameters, defaults);

    const [change] = await api.sequelize.query<{ id: string; kind: string; payload: unknown; status: string }>(
      'SELECT id, kind, payload, status FROM change_requests WHERE instance_id = :id',
      { type: QueryTypes.SELECT, replacements: { id: response.body.id } },
    );
    assert.equal(change!.kind, 'instance.create');
    assert.equal(change!.status, 'pending');
    assert.deepEqual(change!.payload, {
      org,
      project: 'default',
      instanceName: 'ide',
      offering: 'studio',
      role: 'studio',
      version: STUDIO,
      templatePath: `templates/offerings/studio/${STUDIO}`,
      parameters: defaults,
    });
    assert.equal(response.body.lastChangeId, change!.id);

    const detail = await api.call('GET', `/instances/${response.body.id as string}`, { token });
    assert.equal(detail.status, 200);
    assert.deepEqual((detail.body.events as { fromState: unknown; toState: string; changeId: string }[]).map((e) => [e.fromState, e.toState, e.changeId]), [[null, 'requested', change!.id]]);
    assert.deepEqual((detail.body.changes as { id: string }[]).map((c) => c.id), [change!.id]);
    // Why it is `requested`, as Kubernetes conditions: the same on the 202, the detail and the list.
    const why = (body: Record<string, unknown>) => (body.conditions as { type: string; status: string; reason: string }[]).map((c) => [c.type, c.status, c.reason]);
    const expected = [['Synced', 'False', 'ChangePending'], ['Ready', 'False', 'NotOnMain']];
    assert.deepEqual(why(response.body), expected);
    assert.deepEqual(why(detail.body), expected);
    const listed = await api.call('GET', `/instances?org=${org}`, { token });
    assert.deepEqual(why((listed.body.items as Record<string, unknown>[]).find((i) => i.id === response.body.id)!), expected);
  });

  // `x--y`: generated names join slugs with `--` (tenant-paths.ts); 26 characters would push apps--<org>--<name> past 63.
  for (const name of ['../x', 'a/b', 'Foo', 'a'.repeat(64), '-a', 'x--y', 'a'.repeat(SLUG_MAX.instanceName + 1)]) {
    it(`refuses the name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 5)}…(${name.length})` : name)} with 400 naming the field, writing nothing`, async () => {
      const before = [await count('instances'), await count('change_requests')];
      const response = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name } });
      assert.equal(response.status, 400);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.deepEqual(response.body.errors, [{ in: 'body', pointer: '/name', message: (response.body.errors as { message: string }[])[0]!.message }]);
      assert.deepEqual([await count('instances'), await count('change_requests')], before);
    });
  }

  it('refuses a query parameter the route does not know (`?dry_run=true`) with 400 naming it, writing nothing (no instance, change or hold)', async () => {
    const before = [await count('instances'), await count('change_requests')];
    const response = await api.call('POST', '/instances?dry_run=true', { token, body: { org, offering: 'studio', name: 'only-trying' } });
    assert.equal(response.status, 400);
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.deepEqual(response.body.errors, [{ in: 'query', pointer: '/dry_run', message: 'is not an allowed field' }]);
    assert.deepEqual([await count('instances'), await count('change_requests')], before);
    assert.equal((await api.call('GET', `/instances?org=${org}`, { token })).status, 200);
    const listed = await api.call('GET', `/instances?org=${org}&colour=blue`, { token });
    assert.equal(listed.status, 400, 'also where the route has query parameters of its own');
    assert.deepEqual((listed.body.errors as { pointer: string }[]).map((e) => e.pointer), ['/colour']);
  });

  it('refuses `--` in every slug of a request with 400 problem+json naming the field, and takes a name of the longest length', async () => {
    const before = [await count('instances'), await count('change_requests')];
    const cases: [string, string, { body?: Record<string, unknown> }, { in: string; pointer: string }][] = [
      ['POST', '/instances', { body: { org: 'bob--x', offering: 'studio', name: 'y' } }, { in: 'body', pointer: '/org' }],
      ['POST', '/instances', { body: { org, project: 'de--fault', offering: 'studio', name: 'y' } }, { in: 'body', pointer: '/project' }],
      ['POST', '/instances', { body: { org, offering: 'stu--dio', name: 'y' } }, { in: 'body', pointer: '/offering' }],
      ['GET', '/orgs/bob--x', {}, { in: 'path', pointer: '/org' }],
      ['GET', '/instances?org=bob--x', {}, { in: 'query', pointer: '/org' }],
      ['POST', `/orgs/${org}/projects`, { body: { slug: 'a--b' } }, { in: 'body', pointer: '/slug' }],
      ['POST', `/orgs/${org}/teams`, { body: { slug: 'a--b' } }, { in: 'body', pointer: '/slug' }],
    ];
    for (const [method, path, options, where] of cases) {
      const response = await api.call(method, path, { token, ...options });
      assert.equal(response.status, 400, `${method} ${path}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.deepEqual((response.body.errors as { in: string; pointer: string }[]).map((e) => ({ in: e.in, pointer: e.pointer })), [where], `${method} ${path}`);
    }
    assert.deepEqual([await count('instances'), await count('change_requests')], before);
    const longest = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'n'.repeat(SLUG_MAX.instanceName) } });
    assert.equal(longest.status, 202);
  });

  const badParameters: [string, Record<string, unknown>, string][] = [
    ['a wrong type', { storageSize: 'lots' }, '/storageSize'],
    ['an extra field', { size: 'small', shell: true }, '/shell'],
    ['a value out of range', { storageSize: 10_000 }, '/storageSize'],
  ];
  for (const [label, parameters, pointer] of badParameters) {
    it(`refuses parameters with ${label} with 422 naming the field, writing nothing`, async () => {
      const before = [await count('instances'), await count('change_requests')];
      const response = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'bad-params', parameters } });
      assert.equal(response.status, 422);
      assert.equal(response.body.code, 'validation-failed');
      assert.deepEqual((response.body.errors as { in: string; pointer: string }[]).map((e) => [e.in, e.pointer]), [['parameters', pointer]]);
      assert.deepEqual([await count('instances'), await count('change_requests')], before);
    });
  }

  it('refuses unknown offerings, projects and versions with 422, and a taken name with 409', async () => {
    assert.equal((await api.call('POST', '/instances', { token, body: { org, offering: 'nosuch', name: 'x1' } })).status, 422);
    assert.equal((await api.call('POST', '/instances', { token, body: { org, project: 'nosuch', offering: 'rag', name: 'x1' } })).status, 422);
    assert.equal((await api.call('POST', '/instances', { token, body: { org, offering: 'rag', version: '9.9.9', name: 'x1' } })).status, 422);
    assert.equal((await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'taken' } })).status, 202);
    const again = await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'taken' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'instance-name-taken');
  });

  it("holds an offering to its instances per workspace (rag: one, its chart's object names are fixed), also for concurrent requests", async () => {
    const own = await userWithWorkspace(api, 'ragger');
    const post = (name: string) => api.call('POST', '/instances', { token: own.token, body: { org: own.org, offering: 'rag', name } });
    const [a, b] = await Promise.all([post('rag-a'), post('rag-b')]);
    assert.deepEqual([a.status, b.status].sort(), [202, 409], 'one of two concurrent creates');
    const refused = a.status === 409 ? a : b;
    const kept = a.status === 202 ? a : b;
    assert.equal(refused.body.code, 'offering-limit-reached');
    assert.match(String(refused.body.detail), /at most 1 rag instance .*nginx-config.* Delete one first\./);
    assert.deepEqual(refused.body.instances, [kept.body.name]);
    assert.equal((await post('rag-c')).status, 409);
    assert.equal((await api.call('POST', '/instances', { token: own.token, body: { org: own.org, offering: 'studio', name: 'not-rag' } })).status, 202, 'other offerings are not held to it');
    assert.equal((await api.call('DELETE', `/instances/${String(kept.body.id)}`, { token: own.token })).status, 202);
    assert.equal((await post('rag-d')).status, 202, 'a deleted instance leaves room');
    const offering = await api.call('GET', '/offerings/rag', { token: own.token });
    const limit = offering.body.instancesPerWorkspace as { max: number; why: string };
    assert.equal(limit.max, 1, 'GET /offerings/rag says so');
    assert.match(limit.why, /nginx-config/);
  });

  it('defaults to the newest active version and refuses retired ones', async () => {
    const admin = await api.tokenFor(uniqueUser('admin', { platformAdmin: true }));
    const slug = 'publish-demo'; // test/fixtures/offerings: its versions render, so they may be published
    assert.equal((await api.call('POST', '/offerings', { token: admin, body: { slug, role: 'studio', name: 'Lab', description: 'Versions test.' } })).status, 201);
    const schema = { type: 'object', additionalProperties: false, properties: { replicas: { type: 'integer', default: 1 } } };
    for (const [version, status] of [['1.0.0', 'active'], ['1.10.0', 'active'], ['1.9.0', 'active'], ['2.0.0', 'deprecated']] as const) {
      const added = await api.call('POST', `/offerings/${slug}/versions`, { token: admin, body: { version, status, parametersSchema: schema, pricing: { currency: 'EUR', setupFee: 100, hourlyRate: 2 } } });
      assert.equal(added.status, 201);
    }
    // A newer active version without templates in this build (published before the API checked
    // that, or its folder since dropped) is never the default: every order of it would fail in the worker.
    await api.sequelize.query(
      `INSERT INTO offering_versions (offering_id, version, template_path, parameters_schema, currency, setup_fee_minor, hourly_rate_minor, status)
       SELECT id, '3.0.0', 'templates/offerings/publish-demo/3.0.0', :schema, 'EUR', 100, 2, 'active' FROM offerings WHERE slug = :slug`,
      { replacements: { slug, schema: JSON.stringify(schema) } },
    );
    const created = await api.call('POST', '/instances', { token, body: { org, offering: slug, name: 'lab-default' } });
    assert.equal(created.body.version, '1.10.0');
    assert.equal((await api.call('POST', '/instances', { token, body: { org, offering: slug, version: '2.0.0', name: 'lab-deprecated' } })).status, 202);
    assert.equal((await api.call('PATCH', `/offerings/${slug}/versions/1.0.0`, { token: admin, body: { status: 'retired' } })).status, 200);
    const retired = await api.call('POST', '/instances', { token, body: { org, offering: slug, version: '1.0.0', name: 'lab-retired' } });
    assert.equal(retired.status, 422);
    assert.equal(retired.body.code, 'version-retired');
  });

  describe('Idempotency-Key', () => {
    it('replays the stored response for the same key and body, and refuses the key with another body', async () => {
      const body = { org, offering: 'runtime', name: 'replayed' };
      const headers = { 'Idempotency-Key': `k-${Date.now()}` };
      const first = await api.call('POST', '/instances', { token, body, headers });
      assert.equal(first.status, 202);
      const second = await api.call('POST', '/instances', { token, body: { name: 'replayed', offering: 'runtime', org }, headers });
      assert.equal(second.status, 202);
      assert.deepEqual(second.body, first.body);
      assert.equal(second.headers.get('idempotent-replayed'), 'true');
      const reused = await api.call('POST', '/instances', { token, body: { ...body, name: 'other' }, headers });
      assert.equal(reused.status, 422);
      assert.equal(reused.body.code, 'idempotency-key-reused');
      const [row] = await api.sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM instances WHERE organization_id = :orgId AND name IN ('replayed', 'other')", {
        type: QueryTypes.SELECT,
        replacements: { orgId },
      });
      assert.equal(row!.n, 1);
    });

    it('executes 20 concurrent duplicates once', async () => {
      const headers = { 'Idempotency-Key': `burst-${Date.now()}` };
      const body = { org, offering: 'runtime', name: 'burst', parameters: { replicas: 2 } };
      const before = await count('change_requests');
      const responses = await Promise.all(Array.from({ length: 20 }, () => api.call('POST', '/instances', { token, body, headers })));
      assert.deepEqual([...new Set(responses.map((r) => r.status))], [202]);
      assert.equal(new Set(responses.map((r) => r.body.id)).size, 1);
      assert.equal(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true').length, 19);
      const [row] = await api.sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM instances WHERE organization_id = :orgId AND name = 'burst'", {
        type: QueryTypes.SELECT,
        replacements: { orgId },
      });
      assert.equal(row!.n, 1);
      assert.equal(await count('change_requests'), before + 1);
    });

    it('refuses a malformed key (400) and a key reused on another route (422)', async () => {
      const malformed = await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'malformed-key' }, headers: { 'Idempotency-Key': 'has space' } });
      assert.equal(malformed.status, 400);
      assert.deepEqual((malformed.body.errors as { in: string; pointer: string }[]).map((e) => [e.in, e.pointer]), [['header', '/Idempotency-Key']]);
      const headers = { 'Idempotency-Key': `cross-${Date.now()}` };
      assert.equal((await api.call('POST', `/orgs/${org}/projects`, { token, body: { slug: `p${Date.now().toString(36)}` }, headers })).status, 201);
      const reused = await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'cross-route' }, headers });
      assert.equal(reused.status, 422);
      assert.equal(reused.body.code, 'idempotency-key-reused');
    });

    it('scopes keys per caller: another caller with the same key executes its own request', async () => {
      const headers = { 'Idempotency-Key': `shared-${Date.now()}` };
      const other = await api.tokenFor(uniqueUser('other'));
      const otherOrg = (await api.call('POST', '/orgs/auto', { token: other })).body.slug as string;
      const mine = await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'shared-key' }, headers });
      const theirs = await api.call('POST', '/instances', { token: other, body: { org: otherOrg, offering: 'runtime', name: 'shared-key' }, headers });
      assert.equal(mine.status, 202);
      assert.equal(theirs.status, 202);
      assert.notEqual(mine.body.id, theirs.body.id);
    });

    it('does not store error responses: the same key can be retried after fixing the cause', async () => {
      const headers = { 'Idempotency-Key': `retry-${Date.now()}` };
      const body = { org, project: 'later', offering: 'runtime', name: 'later-one' };
      assert.equal((await api.call('POST', '/instances', { token, body, headers })).status, 422);
      assert.equal((await api.call('POST', `/orgs/${org}/projects`, { token, body: { slug: 'later' } })).status, 201);
      assert.equal((await api.call('POST', '/instances', { token, body, headers })).status, 202);
    });
  });

  it('updates and deletes at any live state, the latest request superseding a pending one; the row shows what main holds', async () => {
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'lifecycle' } });
    const id = created.body.id as string;
    // Still requested: the update supersedes the pending create (the worker never publishes it).
    const early = await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { size: 'medium' } } });
    assert.equal(early.status, 202);
    assert.equal(early.body.state, 'requested');
    assert.equal((early.body.parameters as { size: string }).size, 'medium', 'nothing on main yet: the row shows the request');

    // Main holds the early update, and Argo CD says Healthy (what convergence and the webhook record).
    await api.sequelize.query("UPDATE change_requests SET status = 'merged' WHERE id = (SELECT last_change_id FROM instances WHERE id = :id)", { type: QueryTypes.UPDATE, replacements: { id } });
    await observe(api.sequelize, id, 'a'.repeat(40));
    await moveByFacts(api.sequelize, id, 'sync.healthy');
    const sameAgain = await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { size: 'medium' } } });
    assert.equal(sameAgain.status, 422, 'the parameters asked for already');

    const updated = await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { size: 'large' } } });
    assert.equal(updated.status, 202);
    assert.equal(updated.body.state, 'updating');
    const expected = { ...(await defaultsOf('studio')), size: 'large' };
    assert.equal((updated.body.parameters as { size: string }).size, 'medium', 'the version and parameters are what main holds');
    assert.deepEqual(updated.body.desired, { version: STUDIO, parameters: expected });
    assert.deepEqual(updated.body.observed, { present: true, commitSha: 'a'.repeat(40) });
    const badUpdate = await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { size: 'huge' } } });
    assert.equal(badUpdate.status, 422);

    // Deleting while the update is pending supersedes it.
    const deleted = await api.call('DELETE', `/instances/${id}`, { token });
    assert.equal(deleted.status, 202);
    assert.equal(deleted.body.state, 'deleting');
    assert.equal(deleted.body.desiredState, 'absent');
    assert.equal((await api.call('DELETE', `/instances/${id}`, { token })).status, 202, 'a second DELETE answers with the instance as it is');
    assert.equal((await api.call('PATCH', `/instances/${id}`, { token, body: { parameters: { size: 'small' } } })).status, 409);

    const detail = await api.call('GET', `/instances/${id}`, { token });
    const changes = detail.body.changes as { id: string; kind: string; status: string }[];
    assert.deepEqual(changes.map((c) => [c.kind, c.status]), [
      ['instance.create', 'superseded'],
      ['instance.update', 'merged'],
      ['instance.update', 'superseded'],
      ['instance.delete', 'pending'],
    ]);
    const events = detail.body.events as { fromState: string | null; toState: string; cause: string; changeId: string }[];
    assert.deepEqual(events.map((e) => [e.fromState, e.toState, e.changeId]), [
      [null, 'requested', changes[0]!.id],
      ['requested', 'ready', null],
      ['ready', 'updating', changes[2]!.id],
      ['updating', 'deleting', changes[3]!.id],
    ]);
    const [payloads] = await api.sequelize.query<{ update: Record<string, unknown>; delete: Record<string, unknown> }>(
      "SELECT (SELECT payload FROM change_requests WHERE id = :u) AS update, (SELECT payload FROM change_requests WHERE id = :d) AS delete",
      { type: QueryTypes.SELECT, replacements: { u: changes[2]!.id, d: changes[3]!.id } },
    );
    assert.deepEqual(payloads!.update, {
      org,
      project: 'default',
      instanceName: 'lifecycle',
      offering: 'studio',
      role: 'studio',
      version: STUDIO,
      templatePath: `templates/offerings/studio/${STUDIO}`,
      previousTemplatePath: `templates/offerings/studio/${STUDIO}`,
      parameters: expected,
      // What main held when it was asked for: its commit says what changes.
      previous: { version: STUDIO, parameters: { ...(await defaultsOf('studio')), size: 'medium' }, sensitive: [] },
    });
    assert.deepEqual(payloads!.delete, { org, project: 'default', instanceName: 'lifecycle', offering: 'studio', role: 'studio' });
  });

  it("keeps other orgs' instances out of sight (404) and viewers out of changes (403)", async () => {
    const mine = await api.call('POST', '/instances', { token, body: { org, offering: 'rag', name: 'private' } });
    const id = mine.body.id as string;
    const stranger = uniqueUser('stranger');
    const strangerToken = await api.tokenFor(stranger);
    await api.call('POST', '/orgs/auto', { token: strangerToken });
    for (const [method, body] of [['GET', undefined], ['PATCH', { parameters: { size: 'large' } }], ['DELETE', undefined]] as const) {
      const response = await api.call(method, `/instances/${id}`, { token: strangerToken, body });
      assert.equal(response.status, 404, method);
    }
    const listed = await api.call('GET', '/instances', { token: strangerToken });
    assert.deepEqual(listed.body.items, []);
    assert.equal((await api.call('POST', '/instances', { token: strangerToken, body: { org, offering: 'rag', name: 'intruder' } })).status, 404);

    const viewer = uniqueUser('watcher');
    await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: viewer.subject, role: 'viewer' } });
    const viewerToken = await api.tokenFor(viewer);
    assert.equal((await api.call('GET', `/instances/${id}`, { token: viewerToken })).status, 200);
    assert.equal((await api.call('POST', '/instances', { token: viewerToken, body: { org, offering: 'rag', name: 'viewer-made' } })).status, 403);
    assert.equal((await api.call('DELETE', `/instances/${id}`, { token: viewerToken })).status, 403);
  });

  it('pages without skipping rows created within the same millisecond', async () => {
    const pager = await api.tokenFor(uniqueUser('micro'));
    const pagerOrg = (await api.call('POST', '/orgs/auto', { token: pager })).body.slug as string;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await api.call('POST', '/instances', { token: pager, body: { org: pagerOrg, offering: 'runtime', name: `u${i}` } })).body.id as string);
    for (const [i, id] of ids.entries()) {
      await api.sequelize.query(`UPDATE instances SET created_at = '2026-01-01T00:00:00.00012${i}Z' WHERE id = :id`, { type: QueryTypes.UPDATE, replacements: { id } });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<ApiHarness['call']>> = await api.call('GET', `/instances?org=${pagerOrg}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: pager });
      seen.push(...(page.body.items as { id: string }[]).map((i) => i.id));
      cursor = page.body.nextCursor as string | null;
    } while (cursor);
    assert.deepEqual(seen, [...ids].reverse());
  });

  it('lists a page at a time with an opaque cursor, and filters', async () => {
    const pager = await api.tokenFor(uniqueUser('pager'));
    const pagerOrg = (await api.call('POST', '/orgs/auto', { token: pager })).body.slug as string;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await api.call('POST', '/instances', { token: pager, body: { org: pagerOrg, offering: 'runtime', name: `p${i}` } })).body.id as string);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<ApiHarness['call']>> = await api.call('GET', `/instances?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: pager });
      assert.equal(page.status, 200);
      seen.push(...(page.body.items as { id: string }[]).map((i) => i.id));
      cursor = page.body.nextCursor as string | null;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse());

    await markReady(ids[0]!);
    const ready = await api.call('GET', `/instances?org=${pagerOrg}&state=ready`, { token: pager });
    assert.deepEqual((ready.body.items as { id: string }[]).map((i) => i.id), [ids[0]]);
    const none = await api.call('GET', `/instances?org=${pagerOrg}&project=other`, { token: pager });
    assert.deepEqual(none.body.items, []);
    const bad = await api.call('GET', '/instances?cursor=not-a-cursor', { token: pager });
    assert.equal(bad.status, 400);
    assert.deepEqual((bad.body.errors as { pointer: string }[]).map((e) => e.pointer), ['/cursor']);
  });
});
