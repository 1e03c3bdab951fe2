import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { createMembershipMirror } from '../../src/jobs/membership-mirror.ts';
import { KeycloakAdminDirectory } from '../../src/keycloak/keycloak-admin-directory.ts';
import { createLogger } from '../../src/logger.ts';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';
import { KeycloakDouble, type KeycloakEffect } from '../support/keycloak-double.ts';

/**
 * Issue 15's "done when": adding, changing and removing a member reach Keycloak exactly once
 * each through a Keycloak outage in the middle (5xx, then requests that hang, then a request
 * whose effect lands but whose answer never comes), while the API answers at once throughout.
 */
describe('Keycloak faults: membership changes reach Keycloak exactly once through an outage', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let keycloak: KeycloakDouble;
  let mirror: ReturnType<typeof createMembershipMirror>;

  before(async () => {
    api = await startApiHarness({ mirrorToKeycloak: true });
    keycloak = await new KeycloakDouble().start();
    mirror = createMembershipMirror({
      sequelize: api.sequelize,
      directory: new KeycloakAdminDirectory({ url: keycloak.url, realm: keycloak.realm, clientId: 'control-plane', clientSecret: 'kc-secret', timeoutMs: 300 }),
      logger: createLogger('silent'),
      pollMs: 50,
      reconcileIntervalMs: 3_600_000,
      leaseMs: 30_000,
      backoff: () => 20,
    });
    mirror.start();
  });
  after(async () => {
    await mirror.stop();
    await api.close();
    await keycloak.close();
  });

  async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Calls the API and checks it answered without waiting for Keycloak. */
  async function promptly(method: string, path: string, token: string, body?: unknown) {
    const started = Date.now();
    const response = await api.call(method, path, { token, ...(body === undefined ? {} : { body }) });
    const ms = Date.now() - started;
    assert.ok(ms < 1_000, `${method} ${path} took ${ms} ms`);
    return response;
  }

  it('add, re-role and remove: each effect once, in order, and the API never waits', async () => {
    const owner = uniqueUser('kc-fault-owner');
    keycloak.addUser(owner.username!, owner.subject);
    const member = uniqueUser('kc-fault-member');
    keycloak.addUser(member.username!, member.subject);
    const token = await api.tokenFor(owner);
    const org = (await promptly('POST', '/orgs/auto', token)).body.slug as string;
    const groups = () => keycloak.directGroups(member.subject);
    const since = (index: number) => keycloak.requests.slice(index);

    // 1. Add, with Keycloak up.
    assert.equal((await promptly('POST', `/orgs/${org}/members`, token, { subject: member.subject, role: 'member' })).status, 201);
    await until('the member is in Keycloak', () => groups().join() === [`/orgs/${org}`, `/orgs/${org}/member`].join());

    // 2. Re-role during an outage: 5xx, then hanging requests, then the join lands unanswered.
    keycloak.outage({ kind: 'status', status: 503 });
    let mark = keycloak.requests.length;
    assert.equal((await promptly('POST', `/orgs/${org}/members`, token, { subject: member.subject, role: 'viewer' })).status, 200);
    await until('the mirror met 503 twice', () => since(mark).filter((r) => r.status === 503).length >= 2);
    keycloak.outage({ kind: 'hang' });
    mark = keycloak.requests.length;
    await until('a request hung', () => since(mark).some((r) => r.status === 'hung'));
    keycloak.failNext('PUT /users/{id}/groups/{groupId}', { kind: 'hang-after-effect' });
    keycloak.outage(undefined);
    await until('the member is a viewer in Keycloak', () => groups().join() === [`/orgs/${org}`, `/orgs/${org}/viewer`].join());

    // 3. Remove during another outage, the last leave landing unanswered.
    keycloak.outage({ kind: 'status', status: 502 });
    mark = keycloak.requests.length;
    assert.equal((await promptly('DELETE', `/orgs/${org}/members/${member.subject}`, token)).status, 204);
    await until('the mirror met 502', () => since(mark).some((r) => r.status === 502));
    keycloak.outage({ kind: 'hang' });
    mark = keycloak.requests.length;
    await until('a request hung', () => since(mark).some((r) => r.status === 'hung'));
    keycloak.failNext('DELETE /users/{id}/groups/{groupId}', { kind: 'hang-after-effect' });
    keycloak.outage(undefined);
    await until('the member is out of Keycloak', () => groups().length === 0);
    await until('the outbox is empty', async () => {
      const [row] = await api.sequelize.query<{ pending: number }>("SELECT count(*)::int AS pending FROM keycloak_membership_ops WHERE status = 'pending'", { type: QueryTypes.SELECT });
      return row!.pending === 0;
    });

    // Each change reached Keycloak once: these effects, in this order, nothing twice.
    const effects = keycloak.effects.filter((e): e is Extract<KeycloakEffect, { user: string }> => 'user' in e && e.user === member.subject);
    assert.deepEqual(
      effects.map((e) => `${e.action} ${e.path}`),
      [
        `join /orgs/${org}`,
        `join /orgs/${org}/member`,
        `join /orgs/${org}/viewer`,
        `leave /orgs/${org}/member`,
        `leave /orgs/${org}/viewer`,
        `leave /orgs/${org}`,
      ],
    );
    // Every membership request that reached Keycloak had an effect: none was sent again after it landed.
    const memberWrites = [...keycloak.succeeded('PUT /users/{id}/groups/{groupId}'), ...keycloak.succeeded('DELETE /users/{id}/groups/{groupId}')]
      .filter((r) => r.path.includes(`/users/${member.subject}/groups/`));
    assert.equal(memberWrites.length, 6);
    assert.equal(memberWrites.filter((r) => r.status === 'hung').length, 2, 'two effects landed without an answer');
    assert.ok(keycloak.requests.filter((r) => r.status === 503 || r.status === 502).length >= 3, 'the outage was met');
    assert.deepEqual(keycloak.violations, []);

    const ops = await api.sequelize.query<{ cause: string; role: string | null; status: string; attempts: number }>(
      'SELECT cause, role, status, attempts FROM keycloak_membership_ops WHERE subject = :s ORDER BY id',
      { type: QueryTypes.SELECT, replacements: { s: member.subject } },
    );
    assert.deepEqual(ops.map((o) => [o.cause, o.role, o.status]), [
      ['member.added', 'member', 'done'],
      ['member.changed', 'viewer', 'done'],
      ['member.removed', null, 'done'],
    ]);
    assert.ok(ops[1]!.attempts > 1 && ops[2]!.attempts > 1, 'the outage made them retry');
  });
});
