import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { commentBlock } from '../../src/gitops/local/local-pull-requests.ts';
import { RepositoryRejectedError, type GitopsRepository, type PullRequest } from '../../src/gitops/repository.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { connectGithubDriver } from '../support/github-driver.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';

/** A person pressing "Merge" in GitHub's UI, which calls the same REST operation. */
function personMerges(double: GithubDouble, number: number): Promise<Response> {
  const url = `${double.url}/repos/${double.owner}/${double.repo}/pulls/${number}/merge`;
  return fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
}

const SUPERSEDED = 'Superseded by change 7f3c (instance.update of bob-team/notes, requested by alice).';

/** A branch with one commit on the base branch and a pull request from it, through the driver. */
async function openOne(
  repository: GitopsRepository,
  branch: string,
  file = `tenants/bob/apps/${branch}/a.yaml`,
): Promise<PullRequest> {
  const base = (await repository.getBranch(repository.baseBranch))!;
  const changes = [{ path: file, content: 'a: 1\n' }];
  const commit = await repository.createCommit({ parent: base, changes, message: `Add ${branch}` });
  await repository.createBranch(branch, commit);
  return repository.openPullRequest({ branch, title: `Add ${branch}`, body: 'Opened by control-plane.' });
}

describe('closePullRequest: local driver', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;

  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());
  beforeEach(async () => {
    gitops = await createLocalGitops(sequelize);
  });
  afterEach(() => gitops.cleanup());

  const body = async (number: number) =>
    (
      await sequelize.query<{ body: string }>('SELECT body FROM local_pull_requests WHERE number = :number', {
        type: QueryTypes.SELECT,
        replacements: { number },
      })
    )[0]!.body;
  const occurrences = (text: string, part: string) => text.split(part).length - 1;

  it('posts the comment and closes; a retry returns it closed, one comment; a merge then refuses', async () => {
    const { repository } = gitops;
    const pr = await openOne(repository, 'control-plane/batch-a');
    const closed = await repository.closePullRequest(pr.number, SUPERSEDED);
    assert.equal(closed.state, 'closed');
    assert.equal(closed.mergeCommitSha, undefined);
    assert.equal((await repository.getPullRequest(pr.number))!.state, 'closed');

    const again = await repository.closePullRequest(pr.number, SUPERSEDED);
    assert.deepEqual(again, closed);
    const text = await body(pr.number);
    assert.ok(text.startsWith('Opened by control-plane.'), 'the description is kept');
    assert.equal(occurrences(text, commentBlock(SUPERSEDED)), 1);

    await assert.rejects(repository.mergePullRequest(pr.number), RepositoryRejectedError);
    assert.equal(await gitops.git('rev-list', '--count', 'main'), '1', 'nothing reached the base branch');
  });

  it('records the head the branch has when it is closed (the batch branch moved since it was opened)', async () => {
    const { repository } = gitops;
    const pr = await openOne(repository, 'control-plane/batch-b');
    const trim = [{ path: 'tenants/bob/apps/x', delete: true as const }];
    const moved = await repository.createCommit({ parent: pr.headSha, changes: trim, message: 'Trim' });
    await repository.updateBranch(pr.branch, moved, { expected: pr.headSha });
    assert.equal((await repository.closePullRequest(pr.number, SUPERSEDED)).headSha, moved);
    assert.equal((await repository.getPullRequest(pr.number))!.headSha, moved);
  });

  it('returns a merged pull request as it is, with no comment', async () => {
    const { repository } = gitops;
    const pr = await openOne(repository, 'control-plane/batch-c');
    const merged = await repository.mergePullRequest(pr.number);
    assert.deepEqual(await repository.closePullRequest(pr.number, SUPERSEDED), merged);
    assert.equal(await body(pr.number), 'Opened by control-plane.');
  });

  it('returns one a person closed as it is, with no comment, and refuses one that does not exist', async () => {
    const { repository } = gitops;
    const pr = await openOne(repository, 'control-plane/batch-d');
    await repository.pullRequests!.setState(pr.number, 'closed');
    assert.equal((await repository.closePullRequest(pr.number, SUPERSEDED)).state, 'closed');
    assert.equal(await body(pr.number), 'Opened by control-plane.');
    await assert.rejects(repository.closePullRequest(9999, SUPERSEDED), RepositoryRejectedError);
  });

  it('a person reopens and closes it (setState); a new reason is posted once, the same one never twice', async () => {
    const { repository } = gitops;
    const store = repository.pullRequests!;
    const pr = await openOne(repository, 'control-plane/batch-e');
    await repository.closePullRequest(pr.number, SUPERSEDED);

    await store.setState(pr.number, 'open');
    assert.equal((await repository.getPullRequest(pr.number))!.state, 'open');
    await repository.closePullRequest(pr.number, SUPERSEDED);
    const times = occurrences(await body(pr.number), commentBlock(SUPERSEDED));
    assert.equal(times, 1, 'the same reason is not posted again');

    await store.setState(pr.number, 'open');
    const later = 'Superseded by change 9a01 (instance.delete of bob-team/notes).';
    await repository.closePullRequest(pr.number, later);
    assert.equal(occurrences(await body(pr.number), commentBlock(later)), 1);

    await store.setState(pr.number, 'open');
    const merged = await repository.mergePullRequest(pr.number);
    assert.equal(merged.state, 'merged');
    await assert.rejects(store.setState(pr.number, 'open'), RepositoryRejectedError, 'a merged one cannot be reopened');
    await assert.rejects(store.setState(pr.number, 'closed'), RepositoryRejectedError);
  });
});

describe('closePullRequest: github driver against the GitHub API double (OpenAPI-validated)', () => {
  let double: GithubDouble;
  let repository: GithubRepository;

  beforeEach(async () => {
    double = await startGithubDouble();
    repository = await connectGithubDriver(double);
  });
  afterEach(async () => {
    assert.deepEqual(double.violations, [], 'every request matched the GitHub OpenAPI description');
    await double.close();
  });

  const routes = () => double.calls.map((c) => `${c.route} ${c.status}`);
  /** A person acting in GitHub's UI, which calls the same REST operation. */
  const personSets = (number: number, state: 'open' | 'closed') =>
    fetch(`${double.url}/repos/gsv/gsv-gitops/pulls/${number}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ state }),
    });
  const personComments = (number: number, text: string) =>
    fetch(`${double.url}/repos/gsv/gsv-gitops/issues/${number}/comments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ body: text }),
    });

  it('posts the comment, then closes: four REST calls', async () => {
    const pr = await openOne(repository, 'control-plane/batch-a');
    double.resetCalls();
    const closed = await repository.closePullRequest(pr.number, SUPERSEDED);
    assert.deepEqual(routes(), [
      'GET /repos/{owner}/{repo}/pulls/{pull_number} 200',
      'GET /repos/{owner}/{repo}/issues/{issue_number}/comments 200',
      'POST /repos/{owner}/{repo}/issues/{issue_number}/comments 201',
      'PATCH /repos/{owner}/{repo}/pulls/{pull_number} 200',
    ]);
    assert.equal(closed.state, 'closed');
    assert.equal(closed.headSha, pr.headSha);
    assert.equal((await repository.getPullRequest(pr.number))!.state, 'closed');
    const [comment, ...more] = double.comments(pr.number);
    assert.equal(more.length, 0);
    assert.ok(comment!.body.startsWith(`${SUPERSEDED}\n\n<!-- control-plane:closing-comment `), comment!.body);
  });

  it('a retry after the close failed (502, transient) does not post the comment again: three calls', async () => {
    const pr = await openOne(repository, 'control-plane/batch-b');
    double.failNext('PATCH', '/repos/{owner}/{repo}/pulls/{pull_number}', 502);
    const failure = await repository.closePullRequest(pr.number, SUPERSEDED).then(
      () => assert.fail('the injected 502 surfaces'),
      (error: unknown) => error,
    );
    assert.ok(!(failure instanceof RepositoryRejectedError), 'a 5xx is transient');
    assert.equal(double.comments(pr.number).length, 1);

    double.resetCalls();
    assert.equal((await repository.closePullRequest(pr.number, SUPERSEDED)).state, 'closed');
    assert.deepEqual(routes(), [
      'GET /repos/{owner}/{repo}/pulls/{pull_number} 200',
      'GET /repos/{owner}/{repo}/issues/{issue_number}/comments 200',
      'PATCH /repos/{owner}/{repo}/pulls/{pull_number} 200',
    ]);
    assert.equal(double.comments(pr.number).length, 1);
  });

  it('finds its comment on a later page of a long conversation (100 a page)', async () => {
    const pr = await openOne(repository, 'control-plane/batch-c');
    double.failNext('PATCH', '/repos/{owner}/{repo}/pulls/{pull_number}', 503);
    for (let i = 0; i < 110; i += 1) await personComments(pr.number, `review note ${i}`);
    await assert.rejects(repository.closePullRequest(pr.number, SUPERSEDED));
    for (let i = 0; i < 100; i += 1) await personComments(pr.number, `later note ${i}`);

    // Ours is the 111th of 211: on page 2 of 3, and the listing stops there.
    double.resetCalls();
    await repository.closePullRequest(pr.number, SUPERSEDED);
    const count = (route: string) => double.calls.filter((c) => c.route === route).length;
    assert.equal(count('GET /repos/{owner}/{repo}/issues/{issue_number}/comments'), 2);
    assert.equal(count('POST /repos/{owner}/{repo}/issues/{issue_number}/comments'), 0);
    assert.equal(double.comments(pr.number).filter((c) => c.body.includes('control-plane:closing-comment')).length, 1);
  });

  it("does not take a person's comment with the same words for its own", async () => {
    const pr = await openOne(repository, 'control-plane/batch-c2');
    await personComments(pr.number, SUPERSEDED);
    await repository.closePullRequest(pr.number, SUPERSEDED);
    const ours = double.comments(pr.number).map((c) => c.body.includes('control-plane:closing-comment'));
    assert.deepEqual(ours, [false, true]);
  });

  it('returns a closed one as it is (one call) and a merged one as it is (one call), with no comment', async () => {
    const first = await openOne(repository, 'control-plane/batch-d');
    const closed = await repository.closePullRequest(first.number, SUPERSEDED);
    double.resetCalls();
    assert.deepEqual(await repository.closePullRequest(first.number, SUPERSEDED), closed);
    assert.deepEqual(routes(), ['GET /repos/{owner}/{repo}/pulls/{pull_number} 200']);

    const second = await openOne(repository, 'control-plane/batch-e', 'tenants/bob/apps/e/a.yaml');
    const merged = await repository.mergePullRequest(second.number);
    double.resetCalls();
    const result = await repository.closePullRequest(second.number, SUPERSEDED);
    assert.equal(result.state, 'merged');
    assert.equal(result.mergeCommitSha, merged.mergeCommitSha);
    assert.deepEqual(routes(), ['GET /repos/{owner}/{repo}/pulls/{pull_number} 200']);
    assert.equal(double.comments(second.number).length, 0);
  });

  it('returns it merged when a person merged it between the read and the close (GitHub refuses it)', async () => {
    const pr = await openOne(repository, 'control-plane/batch-f');
    const racing: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      if (request.method === 'PATCH' && new URL(request.url).pathname.endsWith(`/pulls/${pr.number}`)) {
        await personMerges(double, pr.number);
      }
      return fetch(request);
    };
    const octokit = await createGithubClient({
      auth: { token: 'test-token' },
      baseUrl: double.url,
      retries: 0,
      throttle: false,
      fetch: racing,
    });
    const racer = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
    const result = await racer.closePullRequest(pr.number, SUPERSEDED);
    assert.equal(result.state, 'merged');
    const refused = double.calls.filter((c) => c.route === 'PATCH /repos/{owner}/{repo}/pulls/{pull_number}');
    assert.deepEqual(refused.map((c) => c.status), [422]);
  });

  it('a person reopens it; the same reason is not posted again, a new one is', async () => {
    const pr = await openOne(repository, 'control-plane/batch-g');
    await repository.closePullRequest(pr.number, SUPERSEDED);
    assert.equal((await personSets(pr.number, 'open')).status, 200);
    assert.equal((await repository.getPullRequest(pr.number))!.state, 'open');
    await repository.closePullRequest(pr.number, SUPERSEDED);
    assert.equal(double.comments(pr.number).length, 1);
    assert.equal((await personSets(pr.number, 'open')).status, 200);
    await repository.closePullRequest(pr.number, 'Superseded by change 9a01.');
    assert.equal(double.comments(pr.number).length, 2);
  });

  it('classifies failures: 403 on the comment is terminal; 429 on the close, 500 on the read transient', async () => {
    const pr = await openOne(repository, 'control-plane/batch-h');
    double.failNext('POST', '/repos/{owner}/{repo}/issues/{issue_number}/comments', 403);
    await assert.rejects(repository.closePullRequest(pr.number, SUPERSEDED), (error: unknown) => {
      assert.ok(error instanceof RepositoryRejectedError);
      assert.match(error.message, /GitHub answered 403/);
      return true;
    });
    for (const [method, route, status] of [
      ['PATCH', '/repos/{owner}/{repo}/pulls/{pull_number}', 429],
      ['GET', '/repos/{owner}/{repo}/pulls/{pull_number}', 500],
    ] as const) {
      double.failNext(method, route, status);
      const transient = (error: unknown) => !(error instanceof RepositoryRejectedError);
      await assert.rejects(repository.closePullRequest(pr.number, SUPERSEDED), transient);
    }
    await assert.rejects(repository.closePullRequest(9999, SUPERSEDED), RepositoryRejectedError, 'no such one');
    assert.equal((await repository.closePullRequest(pr.number, SUPERSEDED)).state, 'closed');
    assert.equal(double.comments(pr.number).length, 1);
  });
});

describe('GitHub double: reopening a pull request, as GitHub allows it', () => {
  let double: GithubDouble;
  let repository: GithubRepository;

  beforeEach(async () => {
    double = await startGithubDouble();
    repository = await connectGithubDriver(double);
  });
  afterEach(async () => {
    assert.deepEqual(double.violations, [], 'every request matched the GitHub OpenAPI description');
    await double.close();
  });

  const patch = async (number: number, body: unknown) => {
    const response = await fetch(`${double.url}/repos/gsv/gsv-gitops/pulls/${number}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as { state?: string; errors?: { message: string }[] };
    return { status: response.status, body: answer };
  };

  it('refuses to reopen one whose head branch was deleted (which closed it), or force-pushed since', async () => {
    const gone = await openOne(repository, 'control-plane/batch-a');
    double.deleteBranch(gone.branch);
    assert.equal((await repository.getPullRequest(gone.number))!.state, 'closed', 'deleting the head closes it');
    const reported = (await repository.getPullRequest(gone.number))!.headSha;
    assert.equal(reported, gone.headSha, 'GitHub still reports its last head');
    const refused = await patch(gone.number, { state: 'open' });
    assert.equal(refused.status, 422);
    assert.match(refused.body.errors![0]!.message, /branch has been deleted/);

    const forced = await openOne(repository, 'control-plane/batch-b', 'tenants/bob/apps/b/a.yaml');
    await repository.closePullRequest(forced.number, SUPERSEDED);
    const base = (await repository.getBranch('main'))!;
    const changes = [{ path: 'tenants/bob/apps/b/z.yaml', content: 'z: 1\n' }];
    const other = await repository.createCommit({ parent: base, changes, message: 'Other' });
    await repository.updateBranch(forced.branch, other, { expected: forced.headSha, force: true });
    const refusedForced = await patch(forced.number, { state: 'open' });
    assert.equal(refusedForced.status, 422);
    assert.match(refusedForced.body.errors![0]!.message, /force-pushed or recreated/);
    await repository.updateBranch(forced.branch, forced.headSha, { expected: other, force: true });
    const reopened = await patch(forced.number, { state: 'open' });
    assert.equal(reopened.body.state, 'open', 'back at the head it was closed at');
  });

  it('refuses to reopen or close a merged one, and to merge a closed one', async () => {
    const pr = await openOne(repository, 'control-plane/batch-c');
    await repository.mergePullRequest(pr.number);
    assert.equal((await patch(pr.number, { state: 'open' })).status, 422);
    assert.equal((await patch(pr.number, { state: 'closed' })).status, 422);

    const closed = await openOne(repository, 'control-plane/batch-d', 'tenants/bob/apps/d/a.yaml');
    await repository.closePullRequest(closed.number, SUPERSEDED);
    await assert.rejects(repository.mergePullRequest(closed.number), RepositoryRejectedError);
    assert.equal((await personMerges(double, closed.number)).status, 405);
    assert.equal((await patch(closed.number, { state: 'closing' })).status, 422, 'state off the schema');
    double.violations.splice(0);
  });
});
