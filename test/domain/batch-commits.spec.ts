import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';
import { tenantDir } from '../../src/gitops/tenant-paths.ts';
import type { BatchCommitMode } from '../../src/domain/changes/change-kinds.ts';

/**
 * Issue 17 item 2: a batch never shows one org another org's data in Git. With per-org commits
 * (the default) a batch's pull request holds one commit per org, and `git log -- <org dir>`
 * shows each org its own commit only; per-org pull requests keep orgs in batches of their own;
 * `shared` is one commit for the batch.
 */
describe('batch commits: one org never sees another org in its history', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  before(async () => {
    sequelize = createTestSequelize();
    gitops = await createLocalGitops(sequelize);
  });
  after(async () => {
    await gitops.cleanup();
    await sequelize.close();
  });

  /** Two orgs, two creates each, queued together, published by a worker in `mode`. */
  async function batchOfTwoOrgs(mode: BatchCommitMode | undefined, mergePolicy = 'pull-request') {
    while (await gitops.worker().runOnce()); // what earlier tests left goes first
    const orgs = [await insertOrganization(sequelize), await insertOrganization(sequelize)];
    const changes: { org: string; id: string; instance: string }[] = [];
    for (const org of orgs) {
      for (let i = 0; i < 2; i += 1) {
        const { instanceId, instanceName } = await insertInstance(sequelize, org, { offering: 'studio', role: 'studio', version: '2.0.0' });
        changes.push({ org: org.orgSlug, instance: instanceId, id: await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, mergePolicy, requestedBy: org.owner, payload: instanceWritePayload(org.orgSlug, instanceName) }) });
      }
    }
    while (await gitops.worker(mode ? { batchCommits: mode } : {}).runOnce());
    const rows = await sequelize.query<{ id: string; commit_sha: string; batch_id: string; pull_request_number: number | null; status: string }>(
      'SELECT id, commit_sha, batch_id, pull_request_number, status FROM change_requests WHERE id = ANY($ids)',
      { type: QueryTypes.SELECT, bind: { ids: changes.map((c) => c.id) } },
    );
    return { orgs: orgs.map((o) => o.orgSlug), changes, rows: new Map(rows.map((r) => [r.id, r])) };
  }
  const message = (sha: string) => gitops.git('log', '-1', '--format=%B', sha);

  it('per-org commits (the default): one pull request, a commit per org with only its changes, and each org\'s log shows only its own', async () => {
    const { orgs, changes, rows } = await batchOfTwoOrgs(undefined);
    const pulls = new Set([...rows.values()].map((r) => r.pull_request_number));
    assert.equal(pulls.size, 1, 'one pull request for the batch');
    const [a, b] = orgs as [string, string];
    const commitOf = (org: string) => new Set(changes.filter((c) => c.org === org).map((c) => rows.get(c.id)!.commit_sha));
    assert.equal(commitOf(a).size, 1);
    assert.equal(commitOf(b).size, 1);
    const [shaA] = [...commitOf(a)] as [string];
    const [shaB] = [...commitOf(b)] as [string];
    assert.notEqual(shaA, shaB);
    assert.equal(await gitops.git('rev-parse', `${shaB}^`), shaA, 'a chain: the second org on the first');
    for (const [sha, mine, theirs] of [[shaA, a, b], [shaB, b, a]] as const) {
      const text = await message(sha);
      assert.match(text, new RegExp(`^2 changes for ${mine}$`, 'm'));
      assert.equal((text.match(/^Change-Id: /gm) ?? []).length, 2);
      assert.ok(!text.includes(theirs), `${theirs} appears in ${mine}'s commit:\n${text}`);
      for (const c of changes.filter((x) => x.org === theirs)) assert.ok(!text.includes(c.instance) && !text.includes(c.id));
      assert.match(text, /^Batch-Id: /m);
    }
    await gitops.repository.mergePullRequest([...pulls][0]!);
    for (const [org, other] of [[a, b], [b, a]] as const) {
      const log = await gitops.git('log', '--format=%B', 'main', '--', `${tenantDir(org, 'bucketed')}/`);
      assert.match(log, new RegExp(`^Org: ${org}$`, 'm'));
      assert.ok(!log.includes(`Org: ${other}`), `git log -- ${org}'s directory shows ${other}`);
    }
  });

  it('per-org pull requests: each org\'s changes in a batch and pull request of their own', async () => {
    const { orgs, changes, rows } = await batchOfTwoOrgs('per-org-pull-requests');
    const pullOf = (org: string) => new Set(changes.filter((c) => c.org === org).map((c) => rows.get(c.id)!.pull_request_number));
    const [a, b] = orgs as [string, string];
    assert.equal(pullOf(a).size, 1);
    assert.equal(pullOf(b).size, 1);
    assert.notDeepEqual([...pullOf(a)], [...pullOf(b)]);
  });

  it('shared: one commit for the batch, every change its own trailer group', async () => {
    const { changes, rows } = await batchOfTwoOrgs('shared');
    const shas = new Set(changes.map((c) => rows.get(c.id)!.commit_sha));
    assert.equal(shas.size, 1);
    const text = await message([...shas][0]!);
    assert.equal((text.match(/^Change-Id: /gm) ?? []).length, 4);
    assert.match(text, /^4 changes for /m);
  });

  it('direct: the per-org commits land on main as they are, each change naming its own', async () => {
    const { orgs, changes, rows } = await batchOfTwoOrgs(undefined, 'direct');
    assert.ok([...rows.values()].every((r) => r.status === 'merged'), JSON.stringify([...rows.values()]));
    const main = await gitops.git('rev-parse', 'main');
    const shaB = rows.get(changes.find((c) => c.org === orgs[1])!.id)!.commit_sha;
    const shaA = rows.get(changes.find((c) => c.org === orgs[0])!.id)!.commit_sha;
    assert.equal(shaB, main);
    assert.equal(await gitops.git('rev-parse', `${main}^`), shaA);
  });

  it('with an org cap (the github driver: what the write budget\'s burst pays for), a batch takes the first orgs with all their changes', async () => {
    while (await gitops.worker().runOnce());
    const orgs = [await insertOrganization(sequelize), await insertOrganization(sequelize), await insertOrganization(sequelize)];
    const ids: { org: string; id: string }[] = [];
    for (const org of [...orgs, ...orgs]) {
      const { instanceId, instanceName } = await insertInstance(sequelize, org, { offering: 'studio', role: 'studio', version: '2.0.0' });
      ids.push({ org: org.orgSlug, id: await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) }) });
    }
    assert.equal(await gitops.worker({ maxOrgsPerBatch: 2 }).runOnce(), true);
    const rows = await sequelize.query<{ id: string; status: string }>('SELECT id, status FROM change_requests WHERE id = ANY($ids)', { type: QueryTypes.SELECT, bind: { ids: ids.map((i) => i.id) } });
    const status = new Map(rows.map((r) => [r.id, r.status]));
    for (const { org, id } of ids) assert.equal(status.get(id), org === orgs[2]!.orgSlug ? 'pending' : 'open', `${org}`);
  });
});
