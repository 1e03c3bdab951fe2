import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { git, gitBytes } from '../../src/gitops/local/git.ts';
import { FILE_MODE, parseCatFileBatch, parseTree, treeObject, TREE_MODE, type TreeEntry, type TreeObject } from '../../src/gitops/local/tree-objects.ts';

describe('git tree objects computed in process', () => {
  let gitDir: string;
  beforeEach(async () => {
    gitDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-trees-'));
    await git(['init', '--quiet', '--bare'], { gitDir });
  });
  afterEach(() => fs.rm(gitDir, { recursive: true, force: true }));

  const blob = async (content: string) => (await git(['hash-object', '-w', '--stdin'], { gitDir, input: content })).trim();
  /** Writes a tree the way git's own tooling does, from its entries (mktree sorts them itself). */
  const mktree = async (tree: TreeObject) => {
    const input = [...tree.entries].map(([name, e]) => `${e.mode.padStart(6, '0')} ${e.mode === TREE_MODE ? 'tree' : 'blob'} ${e.sha}\t${name}\0`).join('');
    return (await git(['mktree', '-z'], { gitDir, input })).trim();
  };
  /** Writes a tree from the body computed here; git checks its format. */
  const hashTree = async (tree: TreeObject) => (await git(['hash-object', '-w', '-t', 'tree', '--stdin'], { gitDir, input: tree.body })).trim();

  it('gives the ids and bodies git gives, in git order (a directory sorts as name/)', async () => {
    const file = await blob('kind: ConfigMap\n');
    const leaf = treeObject(new Map<string, TreeEntry>([['values.yaml', { mode: FILE_MODE, sha: file }]]));
    // "a" as a directory sorts after "a.b" and "a-b" ("a/" > "a."), as a file it would sort before them.
    const root = treeObject(
      new Map<string, TreeEntry>([
        ['a', { mode: TREE_MODE, sha: leaf.sha }],
        ['a.b', { mode: FILE_MODE, sha: file }],
        ['a-b', { mode: FILE_MODE, sha: file }],
        ['ü.yaml', { mode: FILE_MODE, sha: file }],
      ]),
    );
    assert.equal(await mktree(leaf), leaf.sha);
    assert.equal(await mktree(root), root.sha);
    assert.equal(await hashTree(root), root.sha);
    const listing = (await git(['ls-tree', '--name-only', '-z', root.sha], { gitDir })).split('\0').filter(Boolean);
    assert.deepEqual(listing, ['a-b', 'a.b', 'a', 'ü.yaml']);
  });

  it('reads trees back from cat-file --batch, and reports missing paths and non-trees as absent', async () => {
    const file = await blob('x\n');
    const sub = treeObject(new Map<string, TreeEntry>([['f', { mode: FILE_MODE, sha: file }]]));
    const root = treeObject(new Map<string, TreeEntry>([['dir', { mode: TREE_MODE, sha: sub.sha }], ['file', { mode: FILE_MODE, sha: file }]]));
    for (const tree of [sub, root]) assert.equal(await hashTree(tree), tree.sha);

    const requests = [`${root.sha}`, `${root.sha}:dir`, `${root.sha}:nope`, `${root.sha}:file`];
    const out = await gitBytes(['cat-file', '--batch'], { gitDir, input: requests.map((r) => `${r}\n`).join('') });
    const [rootBody, dirBody, missing, notTree] = parseCatFileBatch(out, requests.length, 'tree');
    assert.deepEqual(parseTree(rootBody!), root.entries);
    assert.deepEqual(parseTree(dirBody!), sub.entries);
    assert.equal(missing, undefined);
    assert.equal(notTree, undefined);
  });
});
