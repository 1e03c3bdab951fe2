import assert from 'node:assert/strict';
import type { Sequelize } from 'sequelize';
import { planTreeChanges } from '../../src/gitops/github/tree-changes.ts';
import type { FileChange } from '../../src/gitops/repository.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { startGithubDouble } from '../support/github-double.ts';
import { connectGithubDriver } from '../support/github-driver.ts';
import { createLocalGitops } from '../support/gitops-harness.ts';

const SEED = { 'a/d/old.yaml': 'old\n', 'a/d/keep.yaml': 'keep\n', 'a/d/sub/x.yaml': 'x\n', 'a/other.yaml': 'other\n' };
/** Replace a/d (keeping one file, adding one), and delete a path the base does not have. */
const CHANGES: FileChange[] = [
  { path: 'a/d', delete: true },
  { path: 'a/d/keep.yaml', content: 'new\n' },
  { path: 'a/d/new.yaml', content: 'added\n' },
  { path: 'a/gone.yaml', delete: true },
];
const EXPECTED = [
  ['a/d/keep.yaml', 'new\n'],
  ['a/d/new.yaml', 'added\n'],
  ['a/other.yaml', 'other\n'],
];

describe('planTreeChanges (what one create-tree call says)', () => {
  it('turns "delete a directory, then write below it" into a replaced directory, never a delete and a write below it', () => {
    const plan = planTreeChanges([{ path: 'a', delete: true }, { path: 'a/x', content: 'x' }, { path: 'b/y', delete: true }]);
    assert.deepEqual([...plan.writes], [['a/x', 'x']]);
    assert.deepEqual([...plan.deletes], ['b/y']);
    assert.deepEqual([...plan.replaced], ['a']);
  });

  it('applies the changes in order: a later delete drops earlier writes and deletes below it; a later write undoes a delete of the same path', () => {
    const plan = planTreeChanges([
      { path: 'a/x', content: 'x' },
      { path: 'a/y', delete: true },
      { path: 'a', delete: true },
      { path: 'a/z', delete: true },
      { path: 'b', delete: true },
      { path: 'b', content: 'file now' },
    ]);
    assert.deepEqual([...plan.writes], [['b', 'file now']]);
    assert.deepEqual([...plan.deletes], ['a']);
    assert.deepEqual([...plan.replaced], []);
  });
});

describe('createCommit: delete, then write below, is a replace; deleting an absent path is not an error', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());

  it('local driver (real git)', async () => {
    const gitops = await createLocalGitops(sequelize);
    try {
      const main = (await gitops.repository.getBranch('main'))!;
      const base = await gitops.repository.createCommit({ parent: main, changes: Object.entries(SEED).map(([path, content]) => ({ path, content })), message: 'seed' });
      const commit = await gitops.repository.createCommit({ parent: base, changes: CHANGES, message: 'replace' });
      const files = (await gitops.git('ls-tree', '-r', '--name-only', commit, 'a')).split('\n');
      assert.deepEqual(await Promise.all(files.map(async (path) => [path, `${await gitops.git('show', `${commit}:${path}`)}\n`])), EXPECTED);
    } finally {
      await gitops.cleanup();
    }
  });

  it('github driver (GitHub double): lists the replaced directory, deletes its old files one by one, and drops the delete GitHub refuses (422) for the absent path', async () => {
    const double = await startGithubDouble({ initialFiles: SEED });
    try {
      const repository = await connectGithubDriver(double);
      const main = (await repository.getBranch('main'))!;
      double.resetCalls();
      const commit = await repository.createCommit({ parent: main, changes: CHANGES, message: 'replace' });
      assert.deepEqual([...double.files(commit)].sort(), EXPECTED);
      assert.deepEqual(
        double.calls.map((c) => `${c.route} ${c.status}`),
        [
          // a/d and everything below it, in one query
          'POST /graphql 200',
          'POST /repos/{owner}/{repo}/git/trees 422',
          // whether the one delete not found by listing exists: a/gone.yaml does not
          'GET /repos/{owner}/{repo}/contents/{path} 404',
          'POST /repos/{owner}/{repo}/git/trees 201',
          'POST /repos/{owner}/{repo}/git/commits 201',
        ],
      );
      assert.deepEqual(double.violations, []);
    } finally {
      await double.close();
    }
  });
});

describe('github driver: deleting a directory, which GitHub cannot do in one tree entry', () => {
  it('deletes a directory the change names as one file by file, after one GraphQL listing; one it does not name is found by the 422 and listed then', async () => {
    const double = await startGithubDouble({ initialFiles: SEED });
    try {
      const repository = await connectGithubDriver(double);
      const main = (await repository.getBranch('main'))!;
      double.resetCalls();
      const flagged = await repository.createCommit({ parent: main, changes: [{ path: 'a/d', delete: true, directory: true }], message: 'remove a/d' });
      assert.deepEqual([...double.files(flagged)], [['a/other.yaml', 'other\n']]);
      assert.deepEqual(double.calls.map((c) => `${c.route} ${c.status}`), ['POST /graphql 200', 'POST /repos/{owner}/{repo}/git/trees 201', 'POST /repos/{owner}/{repo}/git/commits 201']);
      assert.deepEqual(double.violations, []);

      double.resetCalls();
      const unflagged = await repository.createCommit({ parent: main, changes: [{ path: 'a/d', delete: true }], message: 'remove a/d' });
      assert.deepEqual([...double.files(unflagged)], [['a/other.yaml', 'other\n']], 'the change still lands');
      assert.deepEqual(double.calls.map((c) => `${c.route} ${c.status}`), [
        'POST /repos/{owner}/{repo}/git/trees 422',
        'GET /repos/{owner}/{repo}/contents/{path} 200',
        'POST /graphql 200',
        'POST /repos/{owner}/{repo}/git/trees 201',
        'POST /repos/{owner}/{repo}/git/commits 201',
      ]);
      // The first attempt asked GitHub for what it refuses: the double says so.
      assert.equal(double.violations.length, 1);
      double.violations.splice(0);
    } finally {
      await double.close();
    }
  });
});

describe('the GitHub double: tree semantics as GitHub documents them', () => {
  it('answers 422 for deleting a path that does not exist and for sha null on a directory, lists directories from contents, and refuses to guess what deleting a directory and writing below it in one call does', async () => {
    const double = await startGithubDouble({ initialFiles: SEED });
    try {
      const base = double.commit(double.branch('main')!)!.tree;
      const createTree = (tree: unknown[]) =>
        fetch(`${double.url}/repos/gsv/gsv-gitops/git/trees`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ base_tree: base, tree }) });
      assert.equal((await createTree([{ path: 'a/nope.yaml', mode: '100644', type: 'blob', sha: null }])).status, 422);
      // GitHub deletes files only (google/go-github#2418): a directory is deleted file by file.
      assert.equal((await createTree([{ path: 'a/d', mode: '100644', type: 'blob', sha: null }])).status, 422, 'a whole directory');
      assert.equal(double.violations.length, 1, double.violations.join('\n'));
      double.violations.splice(0);
      assert.equal((await createTree([{ path: 'a/d/old.yaml', mode: '100644', type: 'blob', sha: null }])).status, 201, 'a file');
      const replace = await createTree([
        { path: 'a/d', mode: '100644', type: 'blob', sha: null },
        { path: 'a/d/keep.yaml', mode: '100644', type: 'blob', content: 'x' },
      ]);
      assert.equal(replace.status, 422);
      assert.equal(double.violations.length, 1, double.violations.join('\n'));
      double.violations.splice(0);

      const contents = async (path: string) => {
        const response = await fetch(`${double.url}/repos/gsv/gsv-gitops/contents/${encodeURIComponent(path)}?ref=main`);
        return { status: response.status, body: (await response.json()) as { type: string; path: string }[] };
      };
      assert.deepEqual((await contents('a/d')).body.map((e) => `${e.type} ${e.path}`), ['file a/d/keep.yaml', 'file a/d/old.yaml', 'dir a/d/sub']);
      assert.equal((await contents('a/other.yaml')).status, 200);
      assert.equal((await contents('a/nope.yaml')).status, 404);
      assert.deepEqual(double.violations, []);
    } finally {
      await double.close();
    }
  });
});
