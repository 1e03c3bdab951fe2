import { instanceDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import type { Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { createAuthenticate } from '../../src/api/auth/authenticate.ts';
import { changeRoutes } from '../../src/api/routes/change-routes.ts';
import { generateApiToken, upsertApiToken } from '../../src/db/api-tokens.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { listen, type Listening } from '../support/http.ts';
import { insertChange, insertInstance, insertOrganization, PLATFORM_BOOTSTRAP } from '../support/change-fixtures.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';

describe('change and audit routes', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  let server: Listening;
  let admin: string;
  let member: string;
  let outsider: string;
  let org: Awaited<ReturnType<typeof insertOrganization>>;

  const call = async (method: string, path: string, token: string) => {
    const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> & { items?: Record<string, unknown>[] } };
  };
  const token = async (subject: string, platformAdmin: boolean) => {
    const value = generateApiToken();
    await sequelize.query('INSERT INTO users (subject) VALUES (:subject) ON CONFLICT DO NOTHING', { replacements: { subject } });
    await upsertApiToken(sequelize, value, { name: `change-routes-${subject}`, subject, platformAdmin });
    return value;
  };

  before(async () => {
    sequelize = createTestSequelize();
    gitops = await createLocalGitops(sequelize);
    const app = createApp({
      logger: createLogger('silent'),
      metrics: createMetrics({ collectDefaults: false }),
      bodyLimitBytes: 1 << 20,
      routes: changeRoutes({ sequelize, repository: gitops.repository, mergePolicy: 'pull-request', billing: { holdTtlSeconds: 3600 } }),
      authenticate: createAuthenticate({ sequelize }),
      sequelize,
    });
    server = await listen(app);
    org = await insertOrganization(sequelize);
    admin = await token(`admin-${org.orgSlug}`, true);
    member = await token(org.owner, false);
    outsider = await token(`outsider-${org.orgSlug}`, false);
  });
  after(async () => {
    await server.close();
    await gitops.cleanup();
    await sequelize.close();
  });

  it('lists, shows and merges changes (admins), and serves the tenant history from Git (members)', async () => {
    const workspace = await insertChange(sequelize, { kind: 'workspace.create', orgId: org.orgId, requestedBy: org.owner, payload: { org: org.orgSlug, orgName: 'Audit', keycloakGroup: `/orgs/${org.orgSlug}` } });
    await gitops.worker().runOnce();
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const create = await insertChange(sequelize, {
      kind: 'instance.create',
      orgId: org.orgId,
      instanceId,
      requestedBy: org.owner,
      payload: { org: org.orgSlug, project: 'default', instanceName, offering: 'rag', role: 'rag', version: '1.0.0', templatePath: 'templates/offerings/rag/1.0.0', parameters: {} },
    });
    await gitops.worker().runOnce();

    const list = await call('GET', `/changes?org=${org.orgSlug}&limit=1`, admin);
    assert.equal(list.status, 200);
    assert.equal(list.body.items!.length, 1);
    assert.equal(list.body.items![0]!.id, create);
    const next = await call('GET', `/changes?org=${org.orgSlug}&limit=1&cursor=${String(list.body.nextCursor)}`, admin);
    assert.equal(next.body.items![0]!.id, workspace);
    assert.equal(next.body.nextCursor, null);
    const open = await call('GET', `/changes?org=${org.orgSlug}&status=open&kind=instance.create`, admin);
    assert.deepEqual(open.body.items!.map((c) => c.id), [create]);

    const shown = await call('GET', `/changes/${create}`, admin);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.status, 'open');
    assert.ok((shown.body.files as { path: string }[]).some((f) => f.path === `${instanceDir(org.orgSlug, instanceName, 'bucketed')}/application.yaml`));
    // Members read their org's changes (issue 20); anyone else is told nothing, not even that it exists.
    const asMember = await call('GET', `/changes/${create}`, member);
    assert.equal(asMember.status, 200);
    assert.deepEqual(asMember.body, shown.body);
    assert.equal((await call('GET', `/changes/${create}`, outsider)).status, 404);
    assert.deepEqual((await call('GET', `/changes?org=${org.orgSlug}&status=open&kind=instance.create`, member)).body.items!.map((c) => c.id), [create]);
    assert.deepEqual((await call('GET', `/changes?org=${org.orgSlug}`, outsider)).body.items, []);
    assert.ok((await call('GET', '/changes?limit=100', member)).body.items!.every((c) => c.org === org.orgSlug), "a member's list holds its orgs' changes only");

    for (const id of [workspace, create]) {
      const merged = await call('POST', `/changes/${id}/merge`, admin);
      assert.equal(merged.status, 200, JSON.stringify(merged.body));
    }
    assert.equal((await call('GET', `/changes/${create}`, admin)).body.status, 'merged');
    assert.equal((await call('POST', `/changes/${create}/merge`, member)).status, 403);

    const audit = await call('GET', `/orgs/${org.orgSlug}/audit?limit=1`, member);
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    const [latest] = audit.body.items!;
    assert.deepEqual(latest!.changeIds, [create]);
    assert.deepEqual(latest!.instanceIds, [instanceId]);
    assert.deepEqual(latest!.offerings, ['rag/1.0.0']);
    assert.deepEqual(latest!.requestedBy, [org.owner]);
    assert.match(String((latest!.pullRequests as { url: string }[])[0]!.url), /#pull\/\d+$/);
    const older = await call('GET', `/orgs/${org.orgSlug}/audit?limit=5&cursor=${String(audit.body.nextCursor)}`, member);
    assert.deepEqual(older.body.items!.map((e) => e.changeIds), [[workspace]]);
    assert.equal(older.body.nextCursor, null);

    assert.equal((await call('GET', `/orgs/${org.orgSlug}/audit`, outsider)).status, 404);
    assert.equal((await call('GET', `/orgs/${org.orgSlug}/audit`, admin)).status, 200);
  });

  it("shows a tenant nothing of another org that shares its batch commit: not its title, instances, offerings or requesters", async () => {
    while (await gitops.worker().runOnce()); // what earlier specs left pending goes into batches of its own
    const other = await insertOrganization(sequelize);
    const otherMember = await token(other.owner, false);
    const mine = await insertInstance(sequelize, org);
    const theirs = await insertInstance(sequelize, other);
    const changeOf = (o: typeof org, i: typeof mine, by: string) =>
      insertChange(sequelize, { kind: 'instance.create', orgId: o.orgId, instanceId: i.instanceId, requestedBy: by, payload: { org: o.orgSlug, project: 'default', instanceName: i.instanceName, offering: 'rag', role: 'rag', version: '1.1.0', templatePath: 'templates/offerings/rag/1.1.0', parameters: {} } });
    const myChange = await changeOf(org, mine, org.owner);
    const theirChange = await changeOf(other, theirs, other.owner);
    await gitops.worker().runOnce();
    assert.equal((await call('POST', `/changes/${myChange}/merge`, admin)).status, 200);
    const batch = await call('GET', `/changes/${theirChange}`, admin);
    assert.equal(batch.body.status, 'merged', 'one batch: both merged together');

    const audit = await call('GET', `/orgs/${org.orgSlug}/audit?limit=1`, member);
    const [entry] = audit.body.items!;
    assert.deepEqual(entry!.changeIds, [myChange]);
    assert.deepEqual(entry!.instanceIds, [mine.instanceId]);
    assert.deepEqual(entry!.requestedBy, [org.owner]);
    assert.deepEqual(entry!.offerings, ['rag/1.1.0']);
    const shown = JSON.stringify(entry);
    for (const secret of [other.orgSlug, theirs.instanceId, theirs.instanceName, other.owner, theirChange]) assert.ok(!shown.includes(secret), `${secret} leaked: ${shown}`);
    assert.equal((await call('GET', `/orgs/${org.orgSlug}/audit?cursor=not-a-commit`, member)).status, 400, 'a malformed cursor is the caller\'s error, not a 500');
    const theirAudit = await call('GET', `/orgs/${other.orgSlug}/audit?limit=1`, otherMember);
    assert.deepEqual(theirAudit.body.items![0]!.changeIds, [theirChange]);
    assert.ok(!JSON.stringify(theirAudit.body.items![0]).includes(org.orgSlug));
  });

  it('refuses to merge a change that has no open pull request (409) and names unknown changes (404)', async () => {
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const bad = await insertChange(sequelize, {
      kind: 'instance.create',
      orgId: org.orgId,
      instanceId,
      payload: { org: org.orgSlug, project: 'default', instanceName, offering: 'rag', role: 'rag', version: '1.0.0', templatePath: 'templates/offerings/rag/1.0.0', parameters: { size: 'nope' } },
    });
    await gitops.worker().runOnce();
    assert.equal((await call('POST', `/changes/${bad}/merge`, admin)).status, 409);
    assert.equal((await call('GET', '/changes/6f1d7d1c-0000-4000-8000-000000000000', admin)).status, 404);
  });

  it('refuses (409 pull-request-not-open, not 500) to merge a change whose pull request was closed where we did not see it', async () => {
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const change = await insertChange(sequelize, {
      kind: 'instance.create',
      orgId: org.orgId,
      instanceId,
      payload: { org: org.orgSlug, project: 'default', instanceName, offering: 'rag', role: 'rag', version: '1.0.0', templatePath: 'templates/offerings/rag/1.0.0', parameters: {} },
    });
    await gitops.worker().runOnce();
    const opened = await call('GET', `/changes/${change}`, admin);
    assert.equal(opened.body.status, 'open');
    // Closed on the backend; the change still says open (its close not recorded yet).
    await sequelize.query("UPDATE local_pull_requests SET state = 'closed' WHERE number = :number", { replacements: { number: opened.body.pullRequestNumber } });
    const refused = await call('POST', `/changes/${change}/merge`, admin);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'pull-request-not-open');
  });

  it('proposes the platform manifests as a change (admins), rendered under platform/base/', async () => {
    const body = { image: 'ghcr.io/gsv/control-plane:0.1.0', host: 'cmp.example.org', gitopsRepoURL: 'https://github.com/gsv/gsv-gitops.git', baseBranch: 'main', notificationsUrl: 'http://cmp-control-plane.cmp.svc', secretStore: 'vault', github: PLATFORM_BOOTSTRAP.github, oidc: PLATFORM_BOOTSTRAP.oidc, without: ['sso', 'cms', 'commerce'] };
    const post = (token: string, payload: unknown) =>
      fetch(`${server.url}/platform/bootstrap`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    assert.equal((await post(member, body)).status, 403);
    assert.equal((await post(admin, { ...body, host: 'Not A Host' })).status, 400);
    const unset = await post(admin, { ...body, without: ['vault'] });
    assert.equal(unset.status, 400, 'sso, cms and commerce are rendered without their hosts');
    assert.deepEqual(((await unset.json()) as { errors: { pointer: string }[] }).errors.map((e) => e.pointer), ['/ssoHost', '/cmsHost', '/cmsImage', '/commerceHost']);
    assert.equal((await post(admin, { ...body, without: ['mail'] })).status, 400);
    const rendered = { ...body, without: ['cms'], ssoHost: 'sso.example.org', commerceHost: 'shop.example.org' };
    const contradicting = await post(admin, { ...rendered, keycloak: { url: 'https://id.example.org', realm: 'staff', clientId: 'cmp-mirror' }, saleorApiUrl: 'https://shop.example.net/graphql/' });
    assert.equal(contradicting.status, 400, "the rendered realm and Saleor define the mirror's client and Saleor's URL themselves");
    assert.deepEqual(((await contradicting.json()) as { errors: { pointer: string }[] }).errors.map((e) => e.pointer), ['/keycloak', '/saleorApiUrl']);
    const accepted = await post(admin, body);
    assert.equal(accepted.status, 202);
    const { changeId } = (await accepted.json()) as { changeId: string };
    await gitops.worker().runOnce();
    const change = await call('GET', `/changes/${changeId}`, admin);
    assert.equal(change.body.status, 'open');
    const again = await post(admin, body);
    assert.deepEqual(await again.json(), { changeId }, 'the same payload while its change is open answers that change');
    const files = (await gitops.git('ls-tree', '-r', '--name-only', String(change.body.branch), 'platform/base')).split('\n');
    assert.ok(!files.some((f) => f.startsWith('platform/base/sso/')), 'a role left out is not rendered');
    for (const file of ['platform/base/vault/clustersecretstore-vault.yaml', 'platform/base/platform-apps/application-platform-apps.yaml', 'platform/base/cmp-control-plane/deployment.yaml', 'platform/base/cmp-control-plane/kustomization.yaml', 'platform/base/argocd-tenants/applicationset-tenant-apps.yaml']) {
      assert.ok(files.includes(file), file);
    }
  });

  it('proposes the relayout of flat workspaces (admins): 202 with the orgs, the same change again, 400 for a bad body', async () => {
    const post = (token: string, payload: unknown) =>
      fetch(`${server.url}/platform/tenant-layout`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    const flat = await insertOrganization(sequelize);
    await sequelize.query(`UPDATE organizations SET tenant_layout = 'flat' WHERE id = :id`, { replacements: { id: flat.orgId } });
    assert.equal((await post(member, {})).status, 403);
    assert.equal((await post(admin, { reason: 7 })).status, 400);
    assert.equal((await post(admin, { orgs: ['x'] })).status, 400, 'the orgs are the service\'s to choose');
    const accepted = await post(admin, { reason: 'bucketed layout' });
    assert.equal(accepted.status, 202);
    const body = (await accepted.json()) as { changeId: string; orgs: string[] };
    assert.ok(body.orgs.includes(flat.orgSlug));
    const again = await post(admin, {});
    assert.equal(again.status, 202);
    assert.deepEqual(await again.json(), body);
    const change = await call('GET', `/changes/${body.changeId}`, admin);
    assert.equal(change.body.kind, 'tenants.relayout');
    assert.equal(change.body.status, 'pending');
    await sequelize.query(`UPDATE change_requests SET status = 'failed' WHERE id = :id`, { replacements: { id: body.changeId } });
    await sequelize.query(`UPDATE organizations SET tenant_layout = 'bucketed'`);
    const none = await post(admin, {});
    assert.equal(none.status, 200);
    assert.deepEqual(await none.json(), { changeId: null, orgs: [] });
  });
});
