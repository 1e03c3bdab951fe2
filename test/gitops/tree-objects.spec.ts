import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { git, gitBytes } from '../../src/gitops/local/git.ts';
import { FILE_MODE, mktreeBatchInput, parseCatFileBatch, parseTree, treeObject, TREE_MODE, type TreeEntry } from '../../src/gitops/local/tree-objects.ts';

describe('git tree objects computed in process', () => {
  let gitDir: string;
  beforeEach(async () => {
    gitDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-trees-'));
    await git(['init', '--quiet', '--bare'], { gitDir });
  });
  afterEach(() => fs.rm(gitDir, { recursive: true, force: true }));

  const blob = async (content: string) => (await git(['hash-object', '-w', '--stdin'], { gitDir, input: content })).trim();

  it('gives the ids git gives, in git order (a directory sorts as name/), one mktree for a whole hierarchy', async () => {
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
    const out = (await git(['mktree', '-z', '--batch'], { gitDir, input: mktreeBatchInput([leaf, root]) })).trim().split('\n');
    assert.deepEqual(out, [leaf.sha, root.sha]);
    const listing = (await git(['ls-tree', '--name-only', '-z', root.sha], { gitDir })).split('\0').filter(Boolean);
    assert.deepEqual(listing, ['a-b', 'a.b', 'a', 'ü.yaml']);
  });

  it('reads trees back from cat-file --batch, and reports missing paths and non-trees as absent', async () => {
    const file = await blob('x\n');
    const sub = treeObject(new Map<string, TreeEntry>([['f', { mode: FILE_MODE, sha: file }]]));
    const root = treeObject(new Map<string, TreeEntry>([['dir', { mode: TREE_MODE, sha: sub.sha }], ['file', { mode: FILE_MODE, sha: file }]]));
    await git(['mktree', '-z', '--batch'], { gitDir, input: mktreeBatchInput([sub, root]) });

    const requests = [`${root.sha}`, `${root.sha}:dir`, `${root.sha}:nope`, `${root.sha}:file`];
    const out = await gitBytes(['cat-file', '--batch'], { gitDir, input: requests.map((r) => `${r}\n`).join('') });
    const [rootBody, dirBody, missing, notTree] = parseCatFileBatch(out, requests.length, 'tree');
    assert.deepEqual(parseTree(rootBody!), root.entries);
    assert.deepEqual(parseTree(dirBody!), sub.entries);
    assert.equal(missing, undefined);
    assert.equal(notTree, undefined);
  });
});
