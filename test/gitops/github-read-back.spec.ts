import assert from 'node:assert/strict';
import { ComparisonTooLargeError } from '../../src/gitops/github/commit-range.ts';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { RepositoryRejectedError } from '../../src/gitops/repository.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { connectGithubDriver } from '../support/github-driver.ts';

/** compareCommits and readDirectories of the github driver, through the real driver against the double; call counts pinned. */
describe('github driver: reading the base branch back (compare, directories)', () => {
  let double: GithubDouble;
  let repository: GithubRepository;

  beforeEach(async () => {
    double = await startGithubDouble();
    repository = await connectGithubDriver(double);
  });
  afterEach(async () => {
    assert.deepEqual(double.violations, [], 'every request matched the GitHub OpenAPI description or the GraphQL subset');
    await double.close();
  });

  const routes = () => double.calls.map((c) => c.route);
  /**
   * Someone else's commit on main (an engineer's push, outside the driver: it costs none of our
   * rate limit, so a spec may make dozens of them).
   */
  const commitOnMain = async (changes: Parameters<GithubRepository['createCommit']>[0]['changes'], message: string) => {
    const parent = double.branch('main')!;
    const files = double.files(parent);
    for (const change of changes) {
      if ('content' in change) files.set(change.path, change.content);
      else for (const path of [...files.keys()]) if (path === change.path || path.startsWith(`${change.path}/`)) files.delete(path);
    }
    const sha = double.addCommit({ parents: [parent], files, message });
    double.pushBranch('main', sha);
    return sha;
  };
  const app = (org: string, name: string) => `tenants/${org}/apps/${name}`;

  it('reads 3 directories of 2 files (one nested) and a missing one in ONE GraphQL call', async () => {
    const dirs = [app('bob', 'a'), app('bob', 'b'), app('eve', 'c')];
    const sha = await commitOnMain(
      dirs.flatMap((dir) => [
        { path: `${dir}/application.yaml`, content: `name: ${dir}\n` },
        { path: `${dir}/values/values.yaml`, content: 'replicas: 2\n' },
      ]),
      'Add three apps',
    );
    double.resetCalls();
    const read = await repository.readDirectories(sha, [...dirs, app('bob', 'missing')]);
    assert.deepEqual(routes(), ['POST /graphql']);
    for (const dir of dirs) {
      assert.deepEqual([...read.get(dir)!], [
        [`${dir}/application.yaml`, `name: ${dir}\n`],
        [`${dir}/values/values.yaml`, 'replicas: 2\n'],
      ]);
    }
    assert.equal(read.get(app('bob', 'missing'))!.size, 0);
  });

  it('a deleted directory reads empty at the commit that deleted it, and its paths show in compareCommits', async () => {
    const dir = app('bob', 'x');
    const added = await commitOnMain([{ path: `${dir}/application.yaml`, content: 'a: 1\n' }, { path: `${dir}/deep/values.yaml`, content: 'v: 2\n' }], 'Add x');
    const deleted = await commitOnMain([{ path: dir, delete: true, directory: true }], 'Remove x\n\nChange-Id: c2');
    assert.equal((await repository.readDirectories(deleted, [dir])).get(dir)!.size, 0);
    assert.equal((await repository.readDirectories(added, [dir])).get(dir)!.size, 2);
    double.resetCalls();
    const [commit] = await repository.compareCommits(added, deleted);
    assert.deepEqual(commit!.paths, [`${dir}/application.yaml`, `${dir}/deep/values.yaml`]);
    assert.deepEqual(commit!.trailers, { 'Change-Id': ['c2'] });
    assert.deepEqual(routes(), ['GET /repos/{owner}/{repo}/compare/{basehead}'], 'one commit on base: the comparison alone says its paths');
  });

  it('compares 30 commits in 31 calls: one compare, one get-commit each; oldest first, with author and trailers', async () => {
    const base = double.branch('main')!;
    const shas: string[] = [];
    for (let i = 0; i < 30; i += 1) shas.push(await commitOnMain([{ path: `${app('bob', `i${i}`)}/application.yaml`, content: `i: ${i}\n` }], `Add i${i}\n\nChange-Id: c${i}`));
    double.resetCalls();
    const commits = await repository.compareCommits(base, shas[29]!);
    assert.equal(double.calls.length, 31, routes().join('\n'));
    assert.equal(routes().filter((r) => r === 'GET /repos/{owner}/{repo}/commits/{ref}').length, 30);
    assert.deepEqual(commits.map((c) => c.sha), shas);
    assert.deepEqual(commits[7]!.paths, [`${app('bob', 'i7')}/application.yaml`]);
    assert.deepEqual(commits[7]!.trailers, { 'Change-Id': ['c7'] });
    assert.deepEqual(commits[7]!.author, { name: 'control-plane', email: 'control-plane@users.noreply.github.com' });
    assert.match(commits[7]!.authoredAt, /^2026-/);
    assert.deepEqual(await repository.compareCommits(shas[29]!, shas[29]!), []);
  });

  it('a merge commit lists what it changed on the base branch (against its first parent), never what get-commit says of it', async () => {
    const base = await commitOnMain([{ path: `${app('bob', 'old')}/application.yaml`, content: 'old\n' }], 'Add old');
    const onBranch = await repository.createCommit({ parent: base, changes: [{ path: `${app('bob', 'new')}/application.yaml`, content: 'new\n' }], message: 'Add new' });
    await repository.createBranch('control-plane/batch-m', onBranch);
    const direct = await commitOnMain([{ path: `${app('eve', 'direct')}/application.yaml`, content: 'd\n' }], 'Direct');
    const pr = await repository.openPullRequest({ branch: 'control-plane/batch-m', title: 'm', body: '' });
    const merge = (await repository.mergePullRequest(pr.number)).mergeCommitSha!;
    double.resetCalls();
    const commits = await repository.compareCommits(direct, merge);
    assert.deepEqual(commits.map((c) => c.sha), [onBranch, merge]);
    assert.deepEqual(commits[1]!.paths, [`${app('bob', 'new')}/application.yaml`]);
    assert.deepEqual(routes(), ['GET /repos/{owner}/{repo}/compare/{basehead}', 'GET /repos/{owner}/{repo}/commits/{ref}', 'GET /repos/{owner}/{repo}/compare/{basehead}']);
    double.resetCalls();
    const [alone] = await repository.compareCommits(undefined, merge);
    assert.deepEqual(alone!.paths, [`${app('bob', 'new')}/application.yaml`]);
    assert.equal(double.calls.length, 2, 'get-commit for the parents, compare with the first parent for the paths');
  });

  it('a rename touches both paths', async () => {
    const first = await commitOnMain([{ path: 'tenants/bob/a.yaml', content: 'same\n' }], 'Add a');
    const second = await commitOnMain([{ path: 'tenants/bob/a.yaml', delete: true }, { path: 'tenants/bob/b.yaml', content: 'same\n' }], 'Rename a to b');
    const [commit] = await repository.compareCommits(undefined, second);
    assert.deepEqual(commit!.paths, ['tenants/bob/a.yaml', 'tenants/bob/b.yaml']);
    assert.deepEqual((await repository.compareCommits(first, second))[0]!.paths, ['tenants/bob/a.yaml', 'tenants/bob/b.yaml']);
  });

  it('pages a range of more than 250 commits, and refuses one above maxCompareCommits with a typed, terminal error', async () => {
    const base = double.branch('main')!;
    let head = base;
    const shas: string[] = [];
    for (let i = 0; i < 260; i += 1) {
      head = double.addCommit({ parents: [head], files: new Map([...double.files(head), [`tenants/t/f${i}.yaml`, `${i}\n`]]), message: `c${i}` });
      shas.push(head);
    }
    double.resetCalls();
    const commits = await repository.compareCommits(base, head);
    assert.deepEqual(commits.map((c) => c.sha), shas);
    assert.equal(routes().filter((r) => r === 'GET /repos/{owner}/{repo}/compare/{basehead}').length, 4, 'the unpaged call, then 3 pages of 100');
    assert.equal(double.calls.length, 4 + 260);

    const octokit = await createGithubClient({ auth: { token: 't' }, baseUrl: double.url, retries: 0, throttle: false });
    const capped = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main', maxCompareCommits: 100 });
    const refused = await capped.compareCommits(base, head).catch((error: unknown) => error);
    assert.ok(refused instanceof ComparisonTooLargeError && refused instanceof RepositoryRejectedError, String(refused));
    assert.match(refused.message, /260 commits .*read the tenant directories at the head commit/);
  });

  it('an unknown commit is terminal (RepositoryRejectedError); a 5xx is transient', async () => {
    const unknown = 'f'.repeat(40);
    await assert.rejects(repository.compareCommits(double.branch('main')!, unknown), RepositoryRejectedError);
    await assert.rejects(repository.compareCommits(undefined, unknown), RepositoryRejectedError);
    await assert.rejects(repository.readDirectories(unknown, ['tenants/bob']), RepositoryRejectedError);
    await assert.rejects(repository.readDirectories('main; rm -rf /', ['x']), RepositoryRejectedError);
    double.failNext('POST', '/graphql', 502);
    const transient = await repository.readDirectories(double.branch('main')!, ['tenants']).catch((error: unknown) => error);
    assert.ok(transient instanceof Error && !(transient instanceof RepositoryRejectedError), String(transient));
    double.failNext('GET', '/repos/{owner}/{repo}/compare/{basehead}', 503);
    await assert.rejects(repository.compareCommits(double.branch('main')!, double.branch('main')!), (e: unknown) => !(e instanceof RepositoryRejectedError));
  });

  it('reads deeper trees with one more query, and binary or truncated blobs with one get-blob each', async () => {
    await double.close();
    double = await startGithubDouble({ graphqlTextLimit: 16 });
    repository = await connectGithubDriver(double);
    const dir = app('bob', 'deep');
    const sha = await commitOnMain(
      [
        { path: `${dir}/a/b/c/d/e.yaml`, content: 'e: 1\n' },
        { path: `${dir}/long.yaml`, content: `long: ${'x'.repeat(40)}\n` },
        { path: `${dir}/nul.bin`, content: 'a\u0000b' },
        { path: `${dir}/short.yaml`, content: 's: 1\n' },
      ],
      'Deep',
    );
    double.resetCalls();
    const files = (await repository.readDirectories(sha, [dir])).get(dir)!;
    assert.deepEqual(routes().sort(), ['GET /repos/{owner}/{repo}/git/blobs/{file_sha}', 'GET /repos/{owner}/{repo}/git/blobs/{file_sha}', 'POST /graphql', 'POST /graphql']);
    assert.equal(files.get(`${dir}/a/b/c/d/e.yaml`), 'e: 1\n');
    assert.equal(files.get(`${dir}/long.yaml`), `long: ${'x'.repeat(40)}\n`);
    assert.equal(files.get(`${dir}/nul.bin`), 'a\u0000b');
    assert.equal(files.size, 4);
  });

  it('the double refuses GraphQL outside the documented subset, and per_page above 100', async () => {
    const post = (query: string, variables: object = {}) => fetch(`${double.url}/graphql`, { method: 'POST', body: JSON.stringify({ query, variables }) }).then((r) => r.json() as Promise<{ errors?: unknown[] }>);
    assert.ok((await post('{ repository(owner: "gsv", name: "gsv-gitops") { object(expression: "main:") { ... on Tree { entries { bogus } } } } }')).errors);
    assert.ok((await post('query($e: String!) { repository(owner: "gsv", name: "gsv-gitops") { object(expression: $e) { __typename } } }')).errors);
    assert.ok((await post('{ repository(owner: "gsv", name: "gsv-gitops") { object(path: "x") { __typename } } }')).errors);
    await fetch(`${double.url}/repos/gsv/gsv-gitops/compare/main...main?per_page=250`);
    assert.equal(double.violations.length, 4, double.violations.join('\n'));
    double.violations.splice(0);
  });
});
