import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { claimMembershipOp, planMembershipSteps, recordMembershipOpDone } from '../../src/domain/membership-mirror.ts';
import { createMembershipMirror } from '../../src/jobs/membership-mirror.ts';
import { KeycloakAdminDirectory } from '../../src/keycloak/keycloak-admin-directory.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { startApiHarness, uniqueUser, type ApiHarness, type TestUser } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';
import { KeycloakDouble } from '../support/keycloak-double.ts';

describe('membership mirror: Keycloak follows membership', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let keycloak: KeycloakDouble;
  let mirror: ReturnType<typeof createMembershipMirror>;
  const metrics = createMetrics({ collectDefaults: false });

  before(async () => {
    api = await startApiHarness({ mirrorToKeycloak: true });
    keycloak = await new KeycloakDouble().start();
    mirror = createMembershipMirror({
      sequelize: api.sequelize,
      directory: new KeycloakAdminDirectory({ url: keycloak.url, realm: keycloak.realm, clientId: 'control-plane', clientSecret: 'kc-secret', timeoutMs: 2_000 }),
      logger: createLogger('silent'),
      metrics,
      pollMs: 50,
      reconcileIntervalMs: 60_000,
      leaseMs: 30_000,
      backoff: () => 0,
    });
  });
  after(async () => {
    await api.close();
    await keycloak.close();
  });
  afterEach(() => assert.deepEqual(keycloak.violations, []));

  /** A user who exists in Keycloak: their API subject is their Keycloak user id. */
  const keycloakUser = (name: string): TestUser => {
    const user = uniqueUser(name);
    keycloak.addUser(user.username ?? name, user.subject);
    return user;
  };

  async function workspaceOf(owner: TestUser): Promise<{ org: string; token: string }> {
    const token = await api.tokenFor(owner);
    const created = await api.call('POST', '/orgs/auto', { token });
    assert.equal(created.status, 201);
    return { org: created.body.slug as string, token };
  }

  const drained = async () => {
    for (let i = 0; i < 20; i++) {
      const pass = await mirror.drainOnce();
      if (pass.applied + pass.retried + pass.unknownUsers === 0) return;
    }
    throw new Error('the outbox did not drain');
  };

  it('plans joins parent-first and leaves role groups before the org group', () => {
    const org = 'acme';
    assert.deepEqual(planMembershipSteps(org, 'member', new Set()), [
      { action: 'join', path: '/orgs/acme' },
      { action: 'join', path: '/orgs/acme/member' },
    ]);
    assert.deepEqual(planMembershipSteps(org, 'viewer', new Set(['/orgs/acme', '/orgs/acme/member'])), [
      { action: 'join', path: '/orgs/acme/viewer' },
      { action: 'leave', path: '/orgs/acme/member' },
    ]);
    assert.deepEqual(planMembershipSteps(org, undefined, new Set(['/orgs/acme', '/orgs/acme/viewer'])), [
      { action: 'leave', path: '/orgs/acme/viewer' },
      { action: 'leave', path: '/orgs/acme' },
    ]);
    // Lost the org group but kept the role group: Keycloak would skip a join of the parent.
    assert.deepEqual(planMembershipSteps(org, 'owner', new Set(['/orgs/acme/owner'])), [
      { action: 'leave', path: '/orgs/acme/owner' },
      { action: 'join', path: '/orgs/acme' },
      { action: 'join', path: '/orgs/acme/owner' },
    ]);
    assert.deepEqual(planMembershipSteps(org, 'owner', new Set(['/orgs/acme', '/orgs/acme/owner'])), []);
  });

  it('creates the org group the tenant RoleBindings name, with the owner in it, when the workspace is created', async () => {
    const owner = keycloakUser('kc-owner');
    const { org, token } = await workspaceOf(owner);
    const workspace = await api.call('GET', `/orgs/${org}`, { token });
    assert.equal(workspace.body.keycloakGroup, `/orgs/${org}`);
    assert.equal(keycloak.groupId(`/orgs/${org}`), undefined, 'nothing is sent from the request path');
    await drained();
    assert.ok(keycloak.groupId(`/orgs/${org}`));
    for (const role of ['owner', 'member', 'viewer']) assert.ok(keycloak.groupId(`/orgs/${org}/${role}`), role);
    assert.deepEqual(keycloak.directGroups(owner.subject), [`/orgs/${org}`, `/orgs/${org}/owner`]);
  });

  it('a group made meanwhile (409 on create) is looked up and used, not made twice', async () => {
    const owner = keycloakUser('kc-conflict');
    const { org } = await workspaceOf(owner);
    keycloak.consoleCreateGroup('/orgs');
    const made = keycloak.consoleCreateGroup(`/orgs/${org}`);
    const before = keycloak.requests.length;
    await drained();
    const mine = keycloak.requests.slice(before);
    assert.ok(mine.some((r) => r.operation === 'POST /groups/{id}/children' && r.status === 409), 'the create met a 409');
    assert.equal(keycloak.groupId(`/orgs/${org}`), made);
    assert.deepEqual(keycloak.directGroups(owner.subject), [`/orgs/${org}`, `/orgs/${org}/owner`]);
  });

  it('a create that landed without an answer meets 409 on retry and adopts the group', async () => {
    const owner = keycloakUser('kc-lost-create');
    keycloak.failNext('POST /groups/{id}/children', { kind: 'hang-after-effect' });
    const { org } = await workspaceOf(owner);
    const quick = createMembershipMirror({
      sequelize: api.sequelize,
      directory: new KeycloakAdminDirectory({ url: keycloak.url, realm: keycloak.realm, clientId: 'control-plane', clientSecret: 'kc-secret', timeoutMs: 300 }),
      logger: createLogger('silent'),
      pollMs: 50,
      reconcileIntervalMs: 60_000,
      leaseMs: 30_000,
      backoff: () => 0,
    });
    assert.ok((await quick.drainOnce()).retried >= 1, 'the unanswered create failed the attempt');
    await drained();
    const orgGroups = keycloak.effects.filter((e) => e.action === 'create-group' && e.path === `/orgs/${org}`);
    assert.equal(orgGroups.length, 1, 'made once');
    assert.ok(keycloak.succeeded('POST /groups/{id}/children').length >= 1);
    assert.ok(keycloak.requests.some((r) => r.operation === 'POST /groups/{id}/children' && r.status === 409));
    assert.deepEqual(keycloak.directGroups(owner.subject), [`/orgs/${org}`, `/orgs/${org}/owner`]);
  });

  it("applies one member's operations in order: a removal waits for the add in flight", async () => {
    const owner = keycloakUser('kc-order-owner');
    const { org, token } = await workspaceOf(owner);
    await drained();
    const member = keycloakUser('kc-order-member');
    await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: member.subject, role: 'member' } });
    // Another worker has claimed the add and is still at it when the removal arrives.
    const slow = await claimMembershipOp(api.sequelize, { workerId: 'slow-worker', leaseMs: 60_000 });
    assert.equal(slow?.subject, member.subject);
    assert.equal((await api.call('DELETE', `/orgs/${org}/members/${member.subject}`, { token })).status, 204);
    assert.deepEqual(await mirror.drainOnce(), { applied: 0, unknownUsers: 0, retried: 0 }, 'the removal waits');
    // The slow worker's add lands, then the removal goes.
    keycloak.consoleJoin(member.subject, `/orgs/${org}`);
    keycloak.consoleJoin(member.subject, `/orgs/${org}/member`);
    await recordMembershipOpDone(api.sequelize, slow!, 'slow-worker', 'applied');
    await drained();
    assert.deepEqual(keycloak.directGroups(member.subject), []);
  });

  it('a newer change of a member supersedes one not yet started', async () => {
    const owner = keycloakUser('kc-super-owner');
    const { org, token } = await workspaceOf(owner);
    await drained();
    const member = keycloakUser('kc-super-member');
    await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: member.subject, role: 'member' } });
    await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: member.subject, role: 'viewer' } });
    await api.call('DELETE', `/orgs/${org}/members/${member.subject}`, { token });
    const before = keycloak.effects.length;
    await drained();
    const ops = await api.sequelize.query<{ status: string }>('SELECT status FROM keycloak_membership_ops WHERE subject = :s ORDER BY id', {
      type: QueryTypes.SELECT,
      replacements: { s: member.subject },
    });
    assert.deepEqual(ops.map((o) => o.status), ['superseded', 'superseded', 'done']);
    assert.deepEqual(keycloak.effects.slice(before), [], 'never let in on the way out');
  });

  it('a subject Keycloak does not know is skipped with a warning, and not asked about every reconcile round', async () => {
    const owner = keycloakUser('kc-stranger-owner');
    const { org, token } = await workspaceOf(owner);
    const stranger = uniqueUser('not-in-keycloak');
    assert.equal((await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: stranger.subject, role: 'member' } })).status, 201);
    await drained();
    const [op] = await api.sequelize.query<{ status: string; result: string }>(
      'SELECT status, result FROM keycloak_membership_ops WHERE subject = :s ORDER BY id DESC LIMIT 1',
      { type: QueryTypes.SELECT, replacements: { s: stranger.subject } },
    );
    assert.deepEqual(op, { status: 'skipped', result: 'unknown-user' });
    const corrected = await mirror.reconcileOnce();
    assert.ok(!corrected.corrected.some((c) => c.subject === stranger.subject));
  });

  it('the reconciler puts back what was changed in the console, toward the database', async () => {
    const owner = keycloakUser('kc-drift-owner');
    const { org, token } = await workspaceOf(owner);
    const member = keycloakUser('kc-drift-member');
    const intruder = keycloakUser('kc-intruder');
    await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: member.subject, role: 'member' } });
    await drained();
    assert.deepEqual(keycloak.directGroups(member.subject), [`/orgs/${org}`, `/orgs/${org}/member`]);

    // By hand: the owner loses the org group (keeping the role group), the member is moved to
    // viewer, and someone who is no member is added.
    keycloak.consoleLeave(owner.subject, `/orgs/${org}`);
    keycloak.consoleLeave(member.subject, `/orgs/${org}/member`);
    keycloak.consoleJoin(member.subject, `/orgs/${org}/viewer`);
    keycloak.consoleJoin(intruder.subject, `/orgs/${org}`);
    const driftBefore = (await metrics.keycloakMirrorDriftCorrected.get()).values[0]?.value ?? 0;
    const result = await mirror.reconcileOnce();
    assert.deepEqual(
      result.corrected.filter((c) => c.org === org).map((c) => c.subject).sort(),
      [owner.subject, member.subject, intruder.subject].sort(),
    );
    await drained();
    assert.deepEqual(keycloak.directGroups(owner.subject), [`/orgs/${org}`, `/orgs/${org}/owner`]);
    assert.deepEqual(keycloak.directGroups(member.subject), [`/orgs/${org}`, `/orgs/${org}/member`]);
    assert.deepEqual(keycloak.directGroups(intruder.subject), []);
    assert.equal(((await metrics.keycloakMirrorDriftCorrected.get()).values[0]?.value ?? 0) - driftBefore, 3);
    // Nothing left to correct.
    assert.deepEqual((await mirror.reconcileOnce()).corrected.filter((c) => c.org === org), []);
  });

  it('a group deleted in the console is made again', async () => {
    const owner = keycloakUser('kc-deleted');
    const { org } = await workspaceOf(owner);
    await drained();
    keycloak.consoleDeleteGroup(`/orgs/${org}`);
    const first = await mirror.reconcileOnce();
    assert.ok(first.failed.some((f) => f.org === org), 'the cached id is found gone');
    const second = await mirror.reconcileOnce();
    assert.ok(second.corrected.some((c) => c.org === org && c.subject === owner.subject));
    await drained();
    assert.deepEqual(keycloak.directGroups(owner.subject), [`/orgs/${org}`, `/orgs/${org}/owner`]);
  });

  it('gets a new token by the client credentials grant when the last one expired', async () => {
    const short = await new KeycloakDouble({ accessTokenLifespanSeconds: 1 }).start();
    try {
      const directory = new KeycloakAdminDirectory({ url: short.url, realm: short.realm, clientId: 'control-plane', clientSecret: 'kc-secret', timeoutMs: 2_000 });
      const user = short.addUser('expiring');
      assert.deepEqual([...(await directory.directGroupsOf(user))!], []);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      assert.deepEqual([...(await directory.directGroupsOf(user))!], []);
      assert.equal(short.tokensIssued, 2);
      assert.ok(!short.requests.some((r) => r.status === 401), 'no request went out with an expired token');
      const wrong = new KeycloakAdminDirectory({ url: short.url, realm: short.realm, clientId: 'control-plane', clientSecret: 'wrong', timeoutMs: 2_000 });
      await assert.rejects(() => wrong.directGroupsOf(user), /check KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET/);
    } finally {
      await short.close();
    }
  });

  it('writes no outbox rows when the mirror is off', async () => {
    const off = await startApiHarness();
    try {
      const owner = uniqueUser('kc-off');
      const token = await off.tokenFor(owner);
      const org = (await off.call('POST', '/orgs/auto', { token })).body.slug as string;
      await off.call('POST', `/orgs/${org}/members`, { token, body: { subject: uniqueUser('kc-off-m').subject, role: 'member' } });
      const [row] = await off.sequelize.query<{ count: number }>('SELECT count(*)::int AS count FROM keycloak_membership_ops WHERE org_slug = :org', {
        type: QueryTypes.SELECT,
        replacements: { org },
      });
      assert.equal(row!.count, 0);
    } finally {
      await off.close();
    }
  });
});
