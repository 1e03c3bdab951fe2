import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { orgSlugBase } from '../../src/domain/workspaces.ts';
import { isSlug, SLUG_MAX } from '../../src/gitops/tenant-paths.ts';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

describe('workspaces', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => {
    api = await startApiHarness();
  });
  after(() => api.close());

  it('derives an org slug short enough for every generated name, with room for a uniqueness suffix, and no `--`', () => {
    assert.equal(orgSlugBase({ subject: 's', username: 'Jörg.Müller_42' }), 'jorg-muller-42');
    assert.equal(orgSlugBase({ subject: 's', email: 'Ana.Lima+test@example.com' }), 'ana-lima-test');
    assert.equal(orgSlugBase({ subject: 's', username: '---' }), 'org');
    assert.equal(orgSlugBase({ subject: 's' }), 'org');
    const long = orgSlugBase({ subject: 's', username: `${'a'.repeat(30)}-${'b'.repeat(30)}` });
    assert.ok(long.length <= SLUG_MAX.org - '-abcdef'.length && isSlug(long, 'org'), long);
    assert.equal(orgSlugBase({ subject: 's', username: 'ana--lima' }), 'ana-lima');
    assert.equal(orgSlugBase({ subject: 's', username: `${'a'.repeat(22)}--b` }), 'a'.repeat(22));
  });

  it('creates the workspace once under 20 concurrent first calls, then returns it with 200', async () => {
    const user = uniqueUser('racer');
    const token = await api.tokenFor(user);
    const responses = await Promise.all(Array.from({ length: 20 }, () => api.call('POST', '/orgs/auto', { token })));
    assert.equal(responses.filter((r) => r.status === 201).length, 1);
    assert.equal(responses.filter((r) => r.status === 200).length, 19);
    assert.equal(new Set(responses.map((r) => r.body.id)).size, 1);
    const [counts] = await api.sequelize.query<{ orgs: number; changes: number; members: number; projects: number }>(
      `SELECT (SELECT count(*)::int FROM organizations WHERE auto_owner_subject = :s) AS orgs,
              (SELECT count(*)::int FROM change_requests c JOIN organizations o ON o.id = c.organization_id WHERE o.auto_owner_subject = :s AND c.kind = 'workspace.create') AS changes,
              (SELECT count(*)::int FROM memberships WHERE subject = :s) AS members,
              (SELECT count(*)::int FROM projects p JOIN organizations o ON o.id = p.organization_id WHERE o.auto_owner_subject = :s) AS projects`,
      { type: QueryTypes.SELECT, replacements: { s: user.subject } },
    );
    assert.deepEqual(counts, { orgs: 1, changes: 1, members: 1, projects: 1 });

    const again = await api.call('POST', '/orgs/auto', { token });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, responses[0]!.body.id);
  });

  it('returns the workspace with its default project and records a workspace.create change', async () => {
    const user = uniqueUser('alice');
    const created = await api.call('POST', '/orgs/auto', { token: await api.tokenFor(user) });
    assert.equal(created.status, 201);
    assert.equal(created.body.slug, user.username);
    assert.equal(created.body.role, 'owner');
    assert.equal(created.body.keycloakGroup, `/orgs/${user.username}`);
    assert.deepEqual((created.body.projects as { slug: string }[]).map((p) => p.slug), ['default']);
    const [change] = await api.sequelize.query<{ payload: unknown; merge_policy: string; status: string }>(
      "SELECT payload, merge_policy, status FROM change_requests WHERE organization_id = :id AND kind = 'workspace.create'",
      { type: QueryTypes.SELECT, replacements: { id: created.body.id } },
    );
    assert.deepEqual(change, { payload: { org: user.username, orgName: user.username, keycloakGroup: `/orgs/${user.username}` }, merge_policy: 'pull-request', status: 'pending' });
  });

  it('makes slugs unique when two users derive the same one', async () => {
    const name = `twin-${Date.now().toString(36)}`;
    const first = await api.call('POST', '/orgs/auto', { token: await api.tokenFor({ subject: `${name}-a`, username: name }) });
    const second = await api.call('POST', '/orgs/auto', { token: await api.tokenFor({ subject: `${name}-b`, username: name }) });
    assert.equal(first.body.slug, name);
    assert.equal(second.body.slug, `${name}-2`);
  });

  it("hides another org's resources behind 404 and lets viewers read but not mutate", async () => {
    const owner = uniqueUser('owner');
    const ownerToken = await api.tokenFor(owner);
    const org = (await api.call('POST', '/orgs/auto', { token: ownerToken })).body.slug as string;
    const stranger = await api.tokenFor(uniqueUser('stranger'));
    for (const path of [`/orgs/${org}`, `/orgs/${org}/projects`, `/orgs/${org}/teams`, `/orgs/${org}/members`]) {
      const response = await api.call('GET', path, { token: stranger });
      assert.equal(response.status, 404, path);
      assert.equal(response.body.code, 'not-found');
    }
    assert.equal((await api.call('POST', `/orgs/${org}/projects`, { token: stranger, body: { slug: 'sneaky' } })).status, 404);

    const viewer = uniqueUser('viewer');
    const added = await api.call('POST', `/orgs/${org}/members`, { token: ownerToken, body: { subject: viewer.subject, role: 'viewer' } });
    assert.equal(added.status, 201);
    const viewerToken = await api.tokenFor(viewer);
    assert.equal((await api.call('GET', `/orgs/${org}/projects`, { token: viewerToken })).status, 200);
    const refused = await api.call('POST', `/orgs/${org}/projects`, { token: viewerToken, body: { slug: 'mine' } });
    assert.equal(refused.status, 403);
    const [{ n }] = (await api.sequelize.query<{ n: number }>("SELECT count(*)::int AS n FROM projects p JOIN organizations o ON o.id = p.organization_id WHERE o.slug = :org AND p.slug = 'mine'", {
      type: QueryTypes.SELECT,
      replacements: { org },
    })) as [{ n: number }];
    assert.equal(n, 0);
  });

  it('manages projects, teams and members', async () => {
    const owner = uniqueUser('lead');
    const token = await api.tokenFor(owner);
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;

    const project = await api.call('POST', `/orgs/${org}/projects`, { token, body: { slug: 'research', name: 'Research' } });
    assert.equal(project.status, 201);
    assert.equal((await api.call('POST', `/orgs/${org}/projects`, { token, body: { slug: 'research' } })).status, 409);
    const bad = await api.call('POST', `/orgs/${org}/projects`, { token, body: { slug: 'Bad_Slug' } });
    assert.equal(bad.status, 400);
    assert.deepEqual((bad.body.errors as { pointer: string }[]).map((e) => e.pointer), ['/slug']);
    const projects = await api.call('GET', `/orgs/${org}/projects`, { token });
    assert.deepEqual((projects.body.items as { slug: string }[]).map((p) => p.slug), ['default', 'research']);

    assert.equal((await api.call('POST', `/orgs/${org}/teams`, { token, body: { slug: 'devs' } })).status, 201);
    const teams = await api.call('GET', `/orgs/${org}/teams`, { token });
    assert.deepEqual((teams.body.items as { slug: string }[]).map((t) => t.slug), ['owners', 'devs']);

    const dev = uniqueUser('dev');
    assert.equal((await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: dev.subject, role: 'member', team: 'devs' } })).status, 201);
    const changed = await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: dev.subject, role: 'viewer' } });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.role, 'viewer');
    assert.equal(changed.body.team, 'devs');
    assert.equal((await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: dev.subject, role: 'member', team: 'nope' } })).status, 422);
    // The only owner cannot demote themselves.
    assert.equal((await api.call('POST', `/orgs/${org}/members`, { token, body: { subject: owner.subject, role: 'member' } })).status, 422);
    const members = await api.call('GET', `/orgs/${org}/members`, { token });
    assert.deepEqual((members.body.items as { subject: string; role: string }[]).map((m) => [m.subject, m.role]), [[owner.subject, 'owner'], [dev.subject, 'viewer']]);
    const devToken = await api.tokenFor(dev);
    assert.equal((await api.call('POST', `/orgs/${org}/teams`, { token: devToken, body: { slug: 'x' } })).status, 403);
    assert.equal((await api.call('GET', `/orgs/${org}`, { token: devToken })).body.role, 'viewer');

    assert.equal((await api.call('DELETE', `/orgs/${org}/members/${owner.subject}`, { token })).status, 422, 'the last owner stays');
    assert.equal((await api.call('DELETE', `/orgs/${org}/members/${dev.subject}`, { token: devToken })).status, 403);
    assert.equal((await api.call('DELETE', `/orgs/${org}/members/${dev.subject}`, { token })).status, 204);
    assert.equal((await api.call('DELETE', `/orgs/${org}/members/${dev.subject}`, { token })).status, 404);
    assert.equal((await api.call('GET', `/orgs/${org}`, { token: devToken })).status, 404, 'a removed member no longer sees the org');
  });
});
