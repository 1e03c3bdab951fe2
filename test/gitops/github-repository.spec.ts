import { instanceDir, tenantDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { parseTrailers } from '../../src/gitops/repository.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { createChangeWorker, type ChangeWorkerOptions } from '../../src/jobs/change-worker.ts';
import { claimBatch } from '../../src/domain/changes/change-queue.ts';
import { publishChanges } from '../../src/domain/changes/change-publisher.ts';
import { mergeChange } from '../../src/domain/changes/change-merge.ts';
import { deleteMergedBranches } from '../../src/domain/changes/merged-branches.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { connectGithubDriver } from '../support/github-driver.ts';

describe('github driver against the GitHub API double (OpenAPI-validated)', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let catalog: TemplateCatalog;
  let double: GithubDouble;
  let repository: GithubRepository;

  before(async () => {
    sequelize = createTestSequelize();
    catalog = await loadTemplateCatalog();
  });
  after(() => sequelize.close());
  beforeEach(async () => {
    double = await startGithubDouble();
    repository = await connectGithubDriver(double);
  });
  afterEach(async () => {
    assert.deepEqual(double.violations, [], 'every request matched the GitHub OpenAPI description');
    await double.close();
  });

  const worker = (overrides: Partial<ChangeWorkerOptions> = {}) =>
    createChangeWorker({ sequelize, repository, catalog, logger: createLogger('silent'), windowMs: 0, maxBatch: 100, leaseMs: 60_000, pollMs: 20, maxAttempts: 5, ...overrides });
  const row = async (id: string) =>
    (await sequelize.query<{ status: string; pull_request_number: number | null; branch: string; commit_sha: string; merge_commit_sha: string | null }>('SELECT * FROM change_requests WHERE id = :id', {
      type: QueryTypes.SELECT,
      replacements: { id },
    }))[0]!;
  const payload = (org: string, name: string) => instanceWritePayload(org, name, { offering: 'runtime', parameters: { replicas: 2 } });

  it('opens one change as a pull request in at most 5 REST calls, content inline (no blob calls)', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const id = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, requestedBy: 'bob', payload: payload(org.orgSlug, instanceName) });
    await worker().runOnce();
    assert.ok(double.calls.length <= 5, `REST calls: ${double.calls.map((c) => c.route).join(', ')}`);
    assert.ok(!double.calls.some((c) => c.route.includes('/git/blobs')));
    assert.equal(double.pulls.length, 1);
    const change = await row(id);
    assert.equal(change.status, 'open');
    assert.equal(change.pull_request_number, 1);
    const files = double.files(change.branch);
    assert.match(files.get(`${instanceDir(org.orgSlug, instanceName, 'bucketed')}/application.yaml`)!, /replicaCount: 2/);
    assert.match(double.commit(change.commit_sha)!.message, new RegExp(`^Change-Id: ${id}$`, 'm'));
    assert.match(double.pulls[0]!.body, /\| instance\.create \|/);
    assert.equal(double.branch('main') !== change.commit_sha, true);
  });

  it('puts a batch of 50 changes in one commit and one pull request, still within 5 calls', async () => {
    const org = await insertOrganization(sequelize);
    const ids: string[] = [];
    for (let i = 0; i < 50; i += 1) {
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      ids.push(await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: payload(org.orgSlug, instanceName) }));
    }
    await worker().runOnce();
    assert.equal(double.pulls.length, 1);
    assert.ok(double.calls.length <= 5, `REST calls: ${double.calls.length}`);
    const rows = await Promise.all(ids.map(row));
    assert.ok(rows.every((r) => r.status === 'open' && r.pull_request_number === 1));
    assert.equal([...double.files(rows[0]!.branch).keys()].filter((f) => f.endsWith('/application.yaml')).length, 50);
  });

  it('opens a batch of 50 workspace changes as one pull request whose body stays within GitHub\'s 65,536 characters, naming what it leaves out', async () => {
    // 30 workspace changes made a 63,354-character body and 50 a 105,614-character one: GitHub
    // refuses bodies over 65,536 characters (422), and the batch failed for good.
    const ids: string[] = [];
    for (let i = 0; i < 50; i += 1) {
      const org = await insertOrganization(sequelize);
      ids.push(await insertChange(sequelize, { kind: 'workspace.create', orgId: org.orgId, payload: { org: org.orgSlug, orgName: `Org ${i}`, keycloakGroup: `/orgs/${org.orgSlug}` } }));
    }
    // 50 orgs in one batch: one commit for them all (per-org commits would take 100 writes, more than GitHub's 80 a minute).
    await worker({ batchCommits: 'shared' }).runOnce();
    const rows = await Promise.all(ids.map(row));
    assert.ok(rows.every((r) => r.status === 'open'), JSON.stringify(rows.map((r) => r.status)));
    const body = double.pulls.at(-1)!.body;
    assert.ok(body.length <= 65_536, String(body.length));
    assert.match(body, /and \d+ more files? not listed here/);
    assert.equal((body.match(/\| workspace\.create \|/g) ?? []).length, 50, 'every change keeps its row');
  });

  for (const kind of ['secondary', 'primary'] as const) {
    it(`a ${kind} rate limit is waited out until GitHub says so: the change stays pending, its attempt refunded, then its pull request opens`, async () => {
      // After the throttling plugin gave up, a 403 was a rejection and the user's changes failed.
      const org = await insertOrganization(sequelize);
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      const id = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: payload(org.orgSlug, instanceName) });
      double.rateLimitNext('POST', '/repos/{owner}/{repo}/pulls', kind, 600);
      await worker().runOnce();
      const [waiting] = await sequelize.query<{ status: string; attempts: number; last_error: string; wait: number }>(
        'SELECT status, attempts, last_error, extract(epoch FROM next_attempt_at - now())::int AS wait FROM change_requests WHERE id = :id',
        { type: QueryTypes.SELECT, replacements: { id } },
      );
      assert.equal(waiting!.status, 'pending', waiting!.last_error);
      assert.equal(waiting!.attempts, 0, 'a rate limit does not count towards failing the change');
      assert.match(waiting!.last_error, /rate limit/);
      assert.ok(waiting!.wait >= 590 && waiting!.wait <= 601, `waits until GitHub's reset or retry-after, not a guess: ${waiting!.wait} s`);
      await sequelize.query('UPDATE change_requests SET next_attempt_at = now() WHERE id = :id', { replacements: { id } }); // the ten minutes pass
      await worker().runOnce();
      assert.equal((await row(id)).status, 'open');
      assert.equal(double.pulls.length, 1);
    });
  }

  it('a transient 422 "Reference update failed" is retried, not a rejection; a 405 from the merge is not retried in place', async () => {
    const main = (await repository.getBranch('main'))!;
    const commit = await repository.createCommit({ parent: main, changes: [{ path: 'x/a.yaml', content: 'a: 1\n' }], message: 'x' });
    await repository.createBranch('work', main);
    double.failNext('PATCH', '/repos/{owner}/{repo}/git/refs/{ref}', 422, 1, 'Reference update failed');
    const error = await repository.updateBranch('work', commit, { expected: main }).catch((e: unknown) => e as Error);
    assert.ok(error instanceof Error && error.name !== 'RepositoryRejectedError', `transient, so the worker tries again: ${String(error)}`);
    await repository.updateBranch('work', commit, { expected: main });
    assert.equal(double.branch('work'), commit);

    // With the retry plugin on (as in production), 405 and 409 are left to the PR reconciler.
    const retrying = new (repository.constructor as typeof GithubRepository)({
      octokit: await createGithubClient({ auth: { token: 't' }, baseUrl: double.url, retries: 3, throttle: false }),
      owner: double.owner,
      repo: double.repo,
      baseBranch: 'main',
    });
    const pr = await retrying.openPullRequest({ branch: 'work', title: 't', body: 'b' });
    double.failNext('PUT', '/repos/{owner}/{repo}/pulls/{pull_number}/merge', 405, 3, 'Base branch was modified. Review and try the merge again.');
    double.resetCalls();
    await assert.rejects(retrying.mergePullRequest(pr.number), /405/);
    assert.equal(double.calls.filter((c) => c.route === 'PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge').length, 1, 'one merge call, not four');
  });

  it('merges with a method the repository allows: a refused method (405 "… are not allowed on this repository.") is skipped, and the one that worked goes first from then on', async () => {
    // Merge method was always 'merge': on a squash-only repository the 405 read as "not
    // mergeable yet", and auto-merge retried for ever without saying why.
    const squashOnly = await startGithubDouble({ mergeMethods: ['squash'] });
    try {
      const driver = await connectGithubDriver(squashOnly);
      const open = async (branch: string) => {
        const main = (await driver.getBranch('main'))!;
        const commit = await driver.createCommit({ parent: main, changes: [{ path: `${branch}/a.yaml`, content: 'a: 1\n' }], message: `Add ${branch}\n\nChange-Id: ${crypto.randomUUID()}\n` });
        await driver.createBranch(branch, commit);
        return driver.openPullRequest({ branch, title: `Add ${branch}`, body: 'b' });
      };
      const merges = () => squashOnly.calls.filter((c) => c.route === 'PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge').map((c) => c.status);
      const first = await open('one');
      squashOnly.resetCalls();
      const merged = await driver.mergePullRequest(first.number);
      assert.equal(merged.state, 'merged');
      assert.deepEqual(merges(), [405, 200]);
      assert.equal(squashOnly.commit(merged.mergeCommitSha!)!.parents.length, 1, 'a squash commit');
      const second = await open('two');
      squashOnly.resetCalls();
      await driver.mergePullRequest(second.number);
      assert.deepEqual(merges(), [200], 'squash first now');
      assert.deepEqual(squashOnly.violations, []);

      const rebaseOnly = new GithubRepository({ octokit: await createGithubClient({ auth: { token: 't' }, baseUrl: squashOnly.url, retries: 0, throttle: false }), owner: squashOnly.owner, repo: squashOnly.repo, baseBranch: 'main', mergeMethods: ['merge', 'rebase'] });
      const third = await open('three');
      const refused = (await rebaseOnly.mergePullRequest(third.number).then(
        () => assert.fail('merged with a method the repository does not allow'),
        (e: unknown) => e,
      )) as Error & { reason?: string };
      assert.equal(refused.reason, 'conflict', 'a person must change a setting: not "waiting"');
      assert.match(refused.message, /allows none of the merge methods .*Merge commits are not allowed.*Rebase merges are not allowed.*GITHUB_MERGE_METHODS/);
    } finally {
      await squashOnly.close();
    }
  });

  it('names who asked for a merge in a Merged-By trailer: after the title of a merge commit, after the Change-Id trailers of a squash', async () => {
    for (const method of ['merge', 'squash'] as const) {
      const only = await startGithubDouble({ mergeMethods: [method] });
      try {
        const driver = await connectGithubDriver(only);
        const main = (await driver.getBranch('main'))!;
        const changeId = crypto.randomUUID();
        const commit = await driver.createCommit({ parent: main, changes: [{ path: 'tenants/a.yaml', content: 'a: 1\n' }], message: `Add a\n\nChange-Id: ${changeId}\n` });
        await driver.createBranch('control-plane/batch-m', commit);
        const pr = await driver.openPullRequest({ branch: 'control-plane/batch-m', title: 'Add a', body: 'b' });
        const merged = await driver.mergePullRequest(pr.number, { mergedBy: 'Carol Reviewer <carol@example.org> (carol)\nForged: yes' });
        const message = only.commit(merged.mergeCommitSha!)!.message;
        const trailers = parseTrailers(message);
        assert.deepEqual(trailers['Merged-By'], ['Carol Reviewer <carol@example.org> (carol) Forged: yes'], `${method}: ${message}`);
        assert.equal(trailers.Forged, undefined, 'one line: no forged trailer');
        if (method === 'squash') assert.deepEqual(trailers['Change-Id'], [changeId], 'the squash keeps the change trailers');
        else assert.match(message, /^Merge pull request #1 from gsv\/control-plane\/batch-m\n\nAdd a\n\nMerged-By: /);
        assert.deepEqual(only.violations, []);
      } finally {
        await only.close();
      }
    }
  });

  it('gives up on a request GitHub never answers after its timeout, as a transient error', async () => {
    // No request had a timeout: a hung connection held the worker (and its batch's lease) for ever.
    const sockets = new Set<Socket>();
    const silent = http.createServer(() => {}).on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const hung = new GithubRepository({ octokit: await createGithubClient({ auth: { token: 't' }, baseUrl: `http://127.0.0.1:${port}`, retries: 0, throttle: false, timeoutMs: 300 }), owner: 'o', repo: 'r', baseBranch: 'main' });
      // Without a timeout this never settles, and the spec fails on mocha's own timeout.
      const error = await hung.getBranch('main').then(() => undefined, (e: unknown) => e as Error);
      assert.ok(error, 'it must not answer');
      assert.notEqual(error.name, 'RepositoryRejectedError', 'a timeout is worth another try');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a pull request behind a base that must be up to date is brought up to date, then merged on the next pass', async () => {
    // A PR 'behind' a protected base (up to date required) waited for ever.
    const strict = await startGithubDouble({ requireUpToDate: true });
    try {
      const driver = await connectGithubDriver(strict);
      const main = (await driver.getBranch('main'))!;
      const commit = await driver.createCommit({ parent: main, changes: [{ path: 'p/a.yaml', content: 'a: 1\n' }], message: 'Add p' });
      await driver.createBranch('p', commit);
      const pr = await driver.openPullRequest({ branch: 'p', title: 'Add p', body: 'b' });
      // Someone else's change lands on main first.
      const other = await driver.createCommit({ parent: main, changes: [{ path: 'q/b.yaml', content: 'b: 1\n' }], message: 'Add q' });
      await driver.updateBranch('main', other, { expected: main });
      await assert.rejects(driver.mergePullRequest(pr.number, { onlyWhenReady: true }), (e: Error & { reason?: string }) => e.reason === 'waiting' && /brought it up to date/.test(e.message));
      assert.ok(strict.calls.some((c) => c.route === 'PUT /repos/{owner}/{repo}/pulls/{pull_number}/update-branch' && c.status === 202));
      const merged = await driver.mergePullRequest(pr.number, { onlyWhenReady: true });
      assert.equal(merged.state, 'merged');
      assert.deepEqual([...strict.files(strict.branch('main')!).keys()].filter((p) => p.startsWith('p/') || p.startsWith('q/')).sort(), ['p/a.yaml', 'q/b.yaml']);
      assert.deepEqual(strict.violations, []);
    } finally {
      await strict.close();
    }
  });

  it('deletes the branch of a merged change once, and keeps a closed one a person may reopen', async () => {
    // Merged and closed branches were never deleted (GitHub advises at most about 5,000).
    const org = await insertOrganization(sequelize);
    const ids: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      ids.push(await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: payload(org.orgSlug, instanceName) }));
      await worker().runOnce(); // one pull request each
    }
    const [merged, closed] = await Promise.all(ids.map(row));
    await mergeChange({ sequelize, repository }, ids[0]!, 'admin');
    await repository.closePullRequest(closed!.pull_request_number!, 'closed by a reviewer');
    await sequelize.query("UPDATE change_requests SET status = 'closed' WHERE id = :id", { replacements: { id: ids[1] } }); // as its webhook records it
    const deleted = await deleteMergedBranches({ sequelize, repository });
    assert.ok(deleted.includes(merged!.branch), deleted.join(', '));
    assert.equal(double.branch(merged!.branch), undefined);
    assert.ok(double.branch(closed!.branch), 'a closed pull request keeps its branch: it may be reopened');
    assert.ok(!(await deleteMergedBranches({ sequelize, repository })).includes(merged!.branch), 'once');
  });

  it('polls a pull request with conditional requests: unchanged, GitHub answers 304 (no rate limit spent); changed, the new state', async () => {
    // PR polling used no conditional requests: every reconciler pass spent a request per open PR.
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const id = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: payload(org.orgSlug, instanceName) });
    await worker().runOnce();
    const number = (await row(id)).pull_request_number!;
    double.resetCalls();
    const first = await repository.getPullRequest(number);
    const again = await repository.getPullRequest(number);
    assert.deepEqual(again, first);
    assert.deepEqual(double.calls.map((c) => c.status), [200, 304]);
    await mergeChange({ sequelize, repository }, id, 'admin');
    double.resetCalls();
    assert.equal((await repository.getPullRequest(number))!.state, 'merged');
    assert.deepEqual(double.calls.map((c) => c.status), [200], 'a changed pull request is read again');
  });

  it('ping (readiness) reads GitHub at most once a minute', async () => {
    // Two replicas probing /readyz every 5 s spent 1,440 of the 5,000 requests an hour.
    double.resetCalls();
    for (let i = 0; i < 12; i += 1) await repository.ping();
    assert.equal(double.calls.length, 1, double.calls.map((c) => c.route).join(', '));
  });

  it('a worker killed between "ref created" and "PR created" is taken over, and exactly one pull request exists', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const id = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: payload(org.orgSlug, instanceName) });

    // The first worker claims the batch, creates tree, commit and ref, and dies before the PR.
    const batch = (await claimBatch(sequelize, { workerId: 'doomed', leaseMs: 60_000, windowMs: 0, maxBatch: 100 }))!;
    const dying = new Proxy(repository, {
      get(target, property) {
        if (property === 'openPullRequest') return () => Promise.reject(new Error('SIGKILL'));
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    await assert.rejects(publishChanges(dying, catalog, batch), /SIGKILL/);
    assert.ok(double.branch(batch.branch), 'the ref was created');
    assert.equal(double.pulls.length, 0);

    // Its lease runs out; another worker takes the batch over.
    assert.equal(await worker().runOnce(), false, 'the batch is leased to the dead worker');
    await sequelize.query(`UPDATE change_requests SET lease_expires_at = now() - interval '1 second' WHERE id = :id`, { replacements: { id } });
    double.resetCalls();
    assert.equal(await worker().runOnce(), true);
    assert.equal(double.pulls.length, 1);
    assert.equal(double.calls.filter((c) => c.route === 'POST /repos/{owner}/{repo}/git/commits').length, 0, 'the existing branch commit is reused');
    const change = await row(id);
    assert.equal(change.status, 'open');
    assert.equal(change.pull_request_number, 1);
    assert.equal(change.branch, batch.branch);

    // A rerun of the whole publish (say, the recording transaction was lost) adopts the PR.
    const again = await publishChanges(repository, catalog, { ...batch, changes: batch.changes.map((c) => ({ ...c, attempts: 3 })) });
    assert.equal(again.pullRequest!.number, 1);
    assert.equal(double.pulls.length, 1);
  });

  it('adopts a ref that another attempt created (422 "Reference already exists")', async () => {
    const main = double.branch('main')!;
    assert.equal(await repository.createBranch('control-plane/batch-x', main), main);
    const other = await repository.createCommit({ parent: main, changes: [{ path: 'tenants/a/x.yaml', content: 'a: 1\n' }], message: 'x' });
    assert.equal(await repository.createBranch('control-plane/batch-x', other), main, 'the existing ref wins');
  });

  it('direct policy fast-forwards main; a merge through the API merges the pull request', async () => {
    const org = await insertOrganization(sequelize);
    const first = await insertInstance(sequelize, org);
    const direct = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId: first.instanceId, mergePolicy: 'direct', payload: payload(org.orgSlug, first.instanceName) });
    await worker().runOnce();
    const directRow = await row(direct);
    assert.equal(directRow.status, 'merged');
    assert.equal(double.branch('main'), directRow.commit_sha);

    const second = await insertInstance(sequelize, org);
    const reviewed = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId: second.instanceId, payload: payload(org.orgSlug, second.instanceName) });
    await worker().runOnce();
    const merged = await mergeChange({ sequelize, repository }, reviewed, 'admin');
    assert.equal(double.branch('main'), merged.mergeCommitSha);
    assert.ok(double.files('main').has(`${instanceDir(org.orgSlug, second.instanceName, 'bucketed')}/application.yaml`));
    assert.equal((await row(reviewed)).status, 'merged');
    const history = await repository.history({ pathPrefix: `${tenantDir(org.orgSlug, 'bucketed')}/`, limit: 10 });
    assert.deepEqual(history.commits.map((c) => c.trailers['Change-Id']), [[reviewed], [direct]]);
  });

  it('treats a 5xx as transient (retried later) and a 4xx as terminal (failed with the reason)', async () => {
    const org = await insertOrganization(sequelize);
    const a = await insertInstance(sequelize, org);
    const transient = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId: a.instanceId, payload: payload(org.orgSlug, a.instanceName) });
    double.failNext('POST', '/repos/{owner}/{repo}/git/trees', 502);
    await worker().runOnce();
    assert.equal((await row(transient)).status, 'pending');
    await sequelize.query('UPDATE change_requests SET next_attempt_at = now() WHERE id = :id', { replacements: { id: transient } });
    await worker().runOnce();
    assert.equal((await row(transient)).status, 'open');

    const b = await insertInstance(sequelize, org);
    const terminal = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId: b.instanceId, payload: payload(org.orgSlug, b.instanceName) });
    double.failNext('POST', '/repos/{owner}/{repo}/git/refs', 403);
    await worker().runOnce();
    const failed = (await sequelize.query<{ status: string; last_error: string }>('SELECT status, last_error FROM change_requests WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id: terminal } }))[0]!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.last_error, /GitHub answered 403/);
  });

  it('the double itself refuses what GitHub would: unknown operations, undeclared query names, bodies off the schema', async () => {
    const post = (path: string, body: unknown) => fetch(`${double.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post('/repos/gsv/gsv-gitops/git/trees', { base_tree: 'x', tree: [{ path: 'a', mode: '999999', type: 'blob', content: 'x' }] })).status, 422);
    assert.equal((await post('/repos/gsv/gsv-gitops/pulls', { title: 1, head: 'x', base: 'main' })).status, 422);
    assert.equal((await post('/repos/gsv/gsv-gitops/no-such-thing', {})).status, 404);
    await fetch(`${double.url}/repos/gsv/gsv-gitops/pulls?bogus=1`);
    assert.equal(double.violations.length, 4, double.violations.join('\n'));
    double.violations.splice(0);
  });
});
