import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { git } from '../../src/gitops/local/git.ts';

const IDENTITY = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

describe('LocalRepository.isAncestor', () => {
  let dir: string;
  let repository: LocalRepository;
  let first: string;
  let second: string;
  let sibling: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'contains-commit-'));
    repository = new LocalRepository({ gitDir: path.join(dir, 'repo.git'), baseBranch: 'main' });
    await repository.ensureInitialized([{ path: 'README.md', content: 'hello\n' }]);
    const gitDir = repository.gitDir;
    first = (await git(['rev-parse', 'main'], { gitDir })).trim();
    const tree = (await git(['rev-parse', 'main^{tree}'], { gitDir })).trim();
    second = (await git(['commit-tree', tree, '-p', first, '-m', 'second'], { gitDir, env: IDENTITY })).trim();
    sibling = (await git(['commit-tree', tree, '-p', first, '-m', 'sibling'], { gitDir, env: IDENTITY })).trim();
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('is true for the commit itself and for its descendants', async () => {
    assert.equal(await repository.isAncestor(first, first), true);
    assert.equal(await repository.isAncestor(first, second), true);
  });

  it('is false for an older revision and for a sibling branch', async () => {
    assert.equal(await repository.isAncestor(second, first), false);
    assert.equal(await repository.isAncestor(second, sibling), false);
  });

  it('is false for revisions the repository does not know, and for anything that is not a sha', async () => {
    assert.equal(await repository.isAncestor(first, '0123456789abcdef0123456789abcdef01234567'), false);
    assert.equal(await repository.isAncestor('deadbeef'.repeat(5), second), false);
    assert.equal(await repository.isAncestor(first, '--all'), false);
  });
});
