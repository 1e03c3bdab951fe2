import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalRepository, removeStaleScratch } from '../../src/gitops/local/local-repository.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { git } from '../../src/gitops/local/git.ts';

describe('local repository: initial layout', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-repo-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('creates a bare repository with the gsv-gitops layout, once', async () => {
    const gitDir = path.join(dir, 'gsv-gitops.git');
    const repository = new LocalRepository({ gitDir, baseBranch: 'main' });
    const layout = await readInitialLayout();
    await Promise.all([repository.ensureInitialized(layout), repository.ensureInitialized(layout)]);
    await repository.ensureInitialized(layout);
    await repository.ping();

    assert.equal((await git(['rev-parse', '--is-bare-repository'], { gitDir })).trim(), 'true');
    assert.equal((await git(['rev-list', '--count', 'main'], { gitDir })).trim(), '1');
    const files = (await git(['ls-tree', '-r', '--name-only', 'main'], { gitDir })).trim().split('\n');
    assert.deepEqual(files, ['README.md', 'platform/base/README.md', 'tenants/README.md']);
  });

  it('fails ping when the base branch does not exist', async () => {
    const repository = new LocalRepository({ gitDir: path.join(dir, 'missing.git'), baseBranch: 'main' });
    await assert.rejects(repository.ping());
  });
});

describe('local repository: scratch directories', () => {
  it('removes the scratch directories a killed commit left behind, and none a running one may use', async () => {
    const stale = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-blobs-'));
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-trees-'));
    const unrelated = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-repo-'));
    try {
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await fs.utimes(stale, twoHoursAgo, twoHoursAgo);
      await fs.utimes(unrelated, twoHoursAgo, twoHoursAgo);
      assert.ok((await removeStaleScratch()) >= 1);
      await assert.rejects(fs.stat(stale));
      await fs.stat(fresh);
      await fs.stat(unrelated);
    } finally {
      for (const dir of [stale, fresh, unrelated]) await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('local repository: reading the base branch back', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-repo-'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('compares two commits (paths per commit, merges against their first parent) and reads directories', async () => {
    const gitDir = path.join(dir, 'gsv-gitops.git');
    const repository = new LocalRepository({ gitDir, baseBranch: 'main' });
    await repository.ensureInitialized(await readInitialLayout());
    const base = (await repository.getBranch('main'))!;
    const first = await repository.createCommit({
      parent: base,
      changes: [
        { path: 'tenants/bob/apps/x/application.yaml', content: 'a: 1\n' },
        { path: 'tenants/bob/apps/x/deep/values.yaml', content: 'v: 2\n' },
      ],
      message: 'Add x\n\nChange-Id: c1',
    });
    const second = await repository.createCommit({ parent: first, changes: [{ path: 'tenants/bob/apps/x/deep', delete: true }], message: 'Trim x' });

    const commits = await repository.compareCommits(base, second);
    assert.deepEqual(commits.map((c) => c.sha), [first, second]);
    assert.deepEqual(commits[0]!.paths, ['tenants/bob/apps/x/application.yaml', 'tenants/bob/apps/x/deep/values.yaml']);
    assert.deepEqual(commits[0]!.trailers, { 'Change-Id': ['c1'] });
    assert.deepEqual(commits[1]!.paths, ['tenants/bob/apps/x/deep/values.yaml']);
    assert.equal(commits[1]!.author.name, 'control-plane');
    assert.deepEqual((await repository.compareCommits(undefined, second)).map((c) => c.sha), [second]);

    const read = await repository.readDirectories(first, ['tenants/bob/apps/x', 'tenants/bob/apps/y']);
    assert.deepEqual([...read.get('tenants/bob/apps/x')!], [
      ['tenants/bob/apps/x/application.yaml', 'a: 1\n'],
      ['tenants/bob/apps/x/deep/values.yaml', 'v: 2\n'],
    ]);
    assert.equal(read.get('tenants/bob/apps/y')!.size, 0);
    await assert.rejects(repository.readDirectories('main; rm -rf /', ['x']));
  });
});
