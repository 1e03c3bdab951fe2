import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
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
