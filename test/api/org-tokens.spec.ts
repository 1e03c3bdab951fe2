import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { QueryTypes } from 'sequelize';
import { startApiHarness, uniqueUser, userWithWorkspace, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

/**
 * Org tokens (issue 14, part 3): minted by an owner of one organization (or a platform admin),
 * acting there only with the role they were given; every other organization's resources are 404
 * to them. Shown once, listed without secrets, revocable, with the time of their last use.
 */
describe('org tokens: POST/GET/DELETE /orgs/:org/tokens', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let log = '';
  before(async () => {
    const logTo = new PassThrough();
    logTo.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    api = await startApiHarness({ logTo });
  });
  after(() => api.close());

  it('acts in its organization with its role, and is 404 to every other one', async () => {
    const mine = await userWithWorkspace(api, 'tok-owner');
    const other = await userWithWorkspace(api, 'tok-other');
    const minted = await api.call('POST', `/orgs/${mine.org}/tokens`, { token: mine.token, body: { name: 'ci-deploy', role: 'member', expiresInDays: 7 } });
    assert.equal(minted.status, 201);
    const secret = minted.body.token as string;
    assert.match(secret, /^cpt_/);
    assert.equal(minted.body.role, 'member');
    assert.ok(Date.parse(minted.body.expiresAt as string) - Date.now() > 6.9 * 86_400_000);

    assert.equal((await api.call('GET', `/orgs/${mine.org}`, { token: secret })).status, 200);
    assert.equal((await api.call('POST', `/orgs/${mine.org}/projects`, { token: secret, body: { slug: 'from-ci' } })).status, 201);
    // A member's rights, not an owner's.
    assert.equal((await api.call('POST', `/orgs/${mine.org}/members`, { token: secret, body: { subject: 'someone', role: 'owner' } })).status, 403);

    // The other organization, and everything of it, does not exist for this token.
    assert.equal((await api.call('GET', `/orgs/${other.org}`, { token: secret })).status, 404);
    assert.equal((await api.call('GET', `/orgs/${other.org}/projects`, { token: secret })).status, 404);
    const otherWallet = ((await api.call('GET', `/orgs/${other.org}`, { token: other.token })).body.wallets as { id: string }[])[0]!.id;
    assert.equal((await api.call('GET', `/billing/wallets/${otherWallet}`, { token: secret })).status, 404);
    assert.equal((await api.call('POST', '/instances', { token: secret, body: { org: other.org, offering: 'runtime', name: 'x' }, headers: { 'Idempotency-Key': `x-${other.org}` } })).status, 404);
    const instances = await api.call('GET', '/instances', { token: secret });
    assert.equal(instances.status, 200);

    // A token is no member to list, and cannot be made a member of another organization.
    const members = await api.call('GET', `/orgs/${mine.org}/members`, { token: mine.token });
    assert.deepEqual((members.body.items as { subject: string }[]).map((m) => m.subject).filter((s) => s.startsWith('org-token:')), []);
    const grafted = await api.call('POST', `/orgs/${other.org}/members`, { token: other.token, body: { subject: minted.body.subject, role: 'owner' } });
    assert.equal(grafted.status, 422);
    assert.equal((await api.call('GET', `/orgs/${other.org}`, { token: secret })).status, 404);

    // No workspace of its own, and no tokens of its own.
    assert.equal((await api.call('POST', '/orgs/auto', { token: secret })).status, 403);
    assert.equal((await api.call('POST', `/orgs/${mine.org}/tokens`, { token: secret, body: { name: 'child', role: 'viewer' } })).status, 403);
    assert.equal((await api.call('POST', '/me/tokens', { token: secret, body: { name: 'child' } })).status, 403);
  });

  it('is listed without its secret, with its last use, and stops working when revoked', async () => {
    const mine = await userWithWorkspace(api, 'tok-list');
    const minted = await api.call('POST', `/orgs/${mine.org}/tokens`, { token: mine.token, body: { name: 'reader', role: 'viewer' } });
    const secret = minted.body.token as string;
    assert.equal((await api.call('POST', `/orgs/${mine.org}/tokens`, { token: mine.token, body: { name: 'reader', role: 'viewer' } })).status, 409);
    const unused = await api.call('GET', `/orgs/${mine.org}/tokens`, { token: mine.token });
    assert.equal((unused.body.items as { lastUsedAt: string | null }[])[0]!.lastUsedAt, null);
    assert.equal((await api.call('GET', `/orgs/${mine.org}/projects`, { token: secret })).status, 200);
    assert.equal((await api.call('POST', `/orgs/${mine.org}/projects`, { token: secret, body: { slug: 'nope' } })).status, 403);

    const listed = await api.call('GET', `/orgs/${mine.org}/tokens`, { token: mine.token });
    assert.equal(listed.status, 200);
    const [row] = listed.body.items as Record<string, unknown>[];
    assert.equal(row!.name, 'reader');
    assert.equal(row!.token, undefined);
    assert.ok(row!.lastUsedAt !== null);
    assert.ok(!JSON.stringify(listed.body).includes(secret.slice(4)));
    // Only its owners list them: the token itself (a viewer) may not.
    assert.equal((await api.call('GET', `/orgs/${mine.org}/tokens`, { token: secret })).status, 403);

    assert.equal((await api.call('DELETE', `/orgs/${mine.org}/tokens/${String(minted.body.id)}`, { token: mine.token })).status, 204);
    assert.equal((await api.call('DELETE', `/orgs/${mine.org}/tokens/${String(minted.body.id)}`, { token: mine.token })).status, 204);
    assert.equal((await api.call('GET', `/orgs/${mine.org}`, { token: secret })).status, 401);
    const [membership] = await api.sequelize.query('SELECT 1 FROM memberships WHERE subject = :subject', { type: QueryTypes.SELECT, replacements: { subject: minted.body.subject } });
    assert.equal(membership, undefined);
    // The name is free again, for a new token with a new subject.
    const again = await api.call('POST', `/orgs/${mine.org}/tokens`, { token: mine.token, body: { name: 'reader', role: 'viewer' } });
    assert.equal(again.status, 201);
    assert.notEqual(again.body.subject, minted.body.subject);
  });

  it('is minted by owners or a platform admin only, and an expired one is refused', async () => {
    const mine = await userWithWorkspace(api, 'tok-roles');
    const member = uniqueUser('tok-member');
    await api.call('POST', `/orgs/${mine.org}/members`, { token: mine.token, body: { subject: member.subject, role: 'member' } });
    const memberToken = await api.tokenFor(member);
    assert.equal((await api.call('POST', `/orgs/${mine.org}/tokens`, { token: memberToken, body: { name: 'm', role: 'viewer' } })).status, 403);
    const stranger = await userWithWorkspace(api, 'tok-stranger');
    assert.equal((await api.call('POST', `/orgs/${mine.org}/tokens`, { token: stranger.token, body: { name: 's', role: 'viewer' } })).status, 404);
    assert.equal((await api.call('GET', `/orgs/${mine.org}/tokens`, { token: stranger.token })).status, 404);

    const admin = await api.tokenFor(uniqueUser('tok-admin', { platformAdmin: true }));
    const byAdmin = await api.call('POST', `/orgs/${mine.org}/tokens`, { token: admin, body: { name: 'ops', role: 'owner' } });
    assert.equal(byAdmin.status, 201);
    assert.equal((await api.call('GET', `/orgs/${mine.org}/members`, { token: byAdmin.body.token as string })).status, 200);
    // An owner token is no owner the last human owner can leave to.
    const self = (await api.call('GET', `/orgs/${mine.org}/members`, { token: mine.token })).body.items as { subject: string; role: string }[];
    const owner = self.find((m) => m.role === 'owner')!.subject;
    assert.equal((await api.call('DELETE', `/orgs/${mine.org}/members/${owner}`, { token: mine.token })).status, 422);
    assert.equal((await api.call('POST', '/orgs/no-such-org-x/tokens', { token: admin, body: { name: 'ops', role: 'owner' } })).status, 404);

    await api.sequelize.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id", { replacements: { id: byAdmin.body.id } });
    assert.equal((await api.call('GET', `/orgs/${mine.org}`, { token: byAdmin.body.token as string })).status, 401);
  });

  it('never writes a token to the log, minted, used, refused or revoked', async () => {
    const mine = await userWithWorkspace(api, 'tok-log');
    const minted = await api.call('POST', `/orgs/${mine.org}/tokens`, { token: mine.token, body: { name: 'quiet', role: 'viewer' } });
    const secret = minted.body.token as string;
    await api.call('GET', `/orgs/${mine.org}`, { token: secret });
    await api.call('GET', `/orgs/${mine.org}/tokens?${secret}`, { token: secret });
    await api.call('DELETE', `/orgs/${mine.org}/tokens/${String(minted.body.id)}`, { token: mine.token });
    await api.call('GET', `/orgs/${mine.org}`, { token: secret });
    assert.match(log, /"msg":"request"/);
    for (const value of [secret, mine.token]) assert.ok(!log.includes(value.slice(4)), 'a token is in the log');
  });
});
