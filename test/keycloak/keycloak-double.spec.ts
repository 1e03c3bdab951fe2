import assert from 'node:assert/strict';
import { KeycloakDouble } from '../support/keycloak-double.ts';

/** The double refuses what Keycloak refuses, and more; these are the rules the mirror's specs lean on. */
describe('Keycloak double', () => {
  let keycloak: KeycloakDouble;
  beforeEach(async () => {
    keycloak = await new KeycloakDouble({
      clients: [
        { clientId: 'control-plane', secret: 'kc-secret' },
        { clientId: 'no-roles', secret: 'nr-secret', roles: [] },
      ],
    }).start();
  });
  afterEach(() => keycloak.close());

  const token = async (clientId = 'control-plane', secret = 'kc-secret') => {
    const response = await fetch(`${keycloak.url}/realms/${keycloak.realm}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }),
    });
    const text = await response.text();
    const json = response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : {};
    return { status: response.status, body: json as { access_token?: string; refresh_token?: string; error?: string } };
  };
  const admin = (path: string, init: RequestInit & { bearer?: string } = {}) =>
    fetch(`${keycloak.url}/admin/realms/${keycloak.realm}${path}`, {
      ...init,
      headers: { ...(init.bearer ? { authorization: `Bearer ${init.bearer}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
    });

  it('issues client-credentials tokens without a refresh token, and refuses bad credentials or two methods at once', async () => {
    const good = await token();
    assert.equal(good.status, 200);
    assert.ok(good.body.access_token?.split('.').length === 3);
    assert.equal(good.body.refresh_token, undefined);
    assert.equal((await token('control-plane', 'wrong')).status, 401);
    const both = await fetch(`${keycloak.url}/realms/${keycloak.realm}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('control-plane:kc-secret').toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_secret: 'kc-secret' }),
    });
    assert.equal(both.status, 400);
    assert.equal(keycloak.violations.length, 1);
  });

  it('answers 401 without a valid token and 403 to a service account without the role', async () => {
    assert.equal((await admin('/groups', { method: 'POST', body: JSON.stringify({ name: 'orgs' }) })).status, 401);
    assert.equal((await admin('/groups', { method: 'POST', body: JSON.stringify({ name: 'orgs' }), bearer: 'made-up' })).status, 401);
    const weak = (await token('no-roles', 'nr-secret')).body.access_token!;
    assert.equal((await admin('/groups', { method: 'POST', body: JSON.stringify({ name: 'orgs' }), bearer: weak })).status, 403);
  });

  it('creates groups with 201 and Location, 409 for a taken name, and refuses unknown fields and query names', async () => {
    const bearer = (await token()).body.access_token!;
    const created = await admin('/groups', { method: 'POST', body: JSON.stringify({ name: 'orgs' }), bearer });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), `${keycloak.url}/admin/realms/${keycloak.realm}/groups/${keycloak.groupId('/orgs')}`);
    const again = await admin('/groups', { method: 'POST', body: JSON.stringify({ name: 'orgs' }), bearer });
    assert.equal(again.status, 409);
    assert.deepEqual(await again.json(), { errorMessage: "Top level group named 'orgs' already exists." });
    assert.equal((await admin('/groups', { method: 'POST', body: JSON.stringify({ name: 'x', colour: 'red' }), bearer })).status, 400);
    assert.equal((await admin(`/groups/${keycloak.groupId('/orgs')}/members?limit=5`, { bearer })).status, 400);
    assert.equal((await admin(`/groups/${keycloak.groupId('/orgs')}/members?max=-1`, { bearer })).status, 400);
    assert.equal((await admin('/groups/nope/children', { method: 'POST', body: JSON.stringify({ name: 'a' }), bearer })).status, 404);
    assert.equal((await admin('/no/such/thing', { bearer })).status, 404);
    assert.equal(keycloak.violations.length, 4);
  });

  it('like Keycloak, skips a join of a parent for a member of its subgroup', async () => {
    const bearer = (await token()).body.access_token!;
    const parent = keycloak.consoleCreateGroup('/orgs');
    keycloak.consoleCreateGroup('/orgs/acme');
    const user = keycloak.addUser('u');
    keycloak.consoleJoin(user, '/orgs/acme');
    assert.equal((await admin(`/users/${user}/groups/${parent}`, { method: 'PUT', bearer })).status, 204);
    assert.deepEqual(keycloak.directGroups(user), ['/orgs/acme']);
    assert.deepEqual(keycloak.effects, []);
    assert.equal((await admin(`/users/nobody/groups/${parent}`, { method: 'PUT', bearer })).status, 404);
  });

  it('fails on demand: an outage for every request, or one request that lands and never answers', async () => {
    const bearer = (await token()).body.access_token!;
    const group = keycloak.consoleCreateGroup('/orgs');
    const user = keycloak.addUser('u');
    keycloak.outage({ kind: 'status', status: 503 });
    assert.equal((await token()).status, 503);
    keycloak.outage(undefined);
    keycloak.failNext('PUT /users/{id}/groups/{groupId}', { kind: 'hang-after-effect' });
    await assert.rejects(admin(`/users/${user}/groups/${group}`, { method: 'PUT', bearer, signal: AbortSignal.timeout(200) }), { name: 'TimeoutError' });
    assert.deepEqual(keycloak.directGroups(user), ['/orgs']);
    assert.equal(keycloak.succeeded('PUT /users/{id}/groups/{groupId}').length, 1);
  });
});
