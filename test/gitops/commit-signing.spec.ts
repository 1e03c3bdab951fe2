import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { QueryTypes } from 'sequelize';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { createSequelize } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { startInProcessService, startServiceWithWorkspace } from '../support/in-process-service.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { loadSigningKey, SigningKeyError } from '../../src/gitops/local/commit-signing.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { git, GitCommandError } from '../../src/gitops/local/git.ts';
import { ConfigError } from '../../src/errors.ts';

const run = promisify(execFile);

/**
 * Issue 17 item 3: the local driver signs every commit it writes with an SSH key (git's
 * gpg.format=ssh), and `git log --show-signature` verifies them against the allowed-signers line
 * the service publishes. What proves it is git itself, not our reading of a signature.
 */
describe('signed commits (local driver)', () => {
  useSpecDatabase();
  let dir: string;
  before(async () => (dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-signing-'))));
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const newKey = async (name: string, options: { passphrase?: string; mode?: number } = {}) => {
    const file = path.join(dir, name);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', options.passphrase ?? '', '-C', name, '-f', file]);
    await fs.chmod(file, options.mode ?? 0o600);
    return file;
  };
  const verify = async (gitDir: string, allowed: string, sha: string) =>
    git(['-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'verify-commit', '--raw', sha], { gitDir }).then(
      () => true,
      (error: unknown) => {
        if (error instanceof GitCommandError) return false;
        throw error;
      },
    );

  it('signs the initial layout, change commits and merges; git verifies each against the published line, and nothing else', async () => {
    const key = await loadSigningKey(await newKey('control-plane'));
    assert.match(key.allowedSigners, /^control-plane@gsv\.invalid namespaces="git" ssh-ed25519 AAAA\S+ control-plane\n$/);
    assert.match(key.fingerprint, /^SHA256:/);
    const allowed = path.join(dir, 'allowed_signers');
    await fs.writeFile(allowed, key.allowedSigners);

    const sequelize = createTestSequelize(2);
    const gitDir = path.join(dir, 'signed.git');
    const repository = new LocalRepository({ gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize, repository: gitDir }), signingKey: key });
    await repository.ensureInitialized(await readInitialLayout());
    const initial = (await repository.getBranch('main'))!;
    const change = await repository.createCommit({ parent: initial, changes: [{ path: 'tenants/README.md', content: 'signed\n' }], message: 'A signed change\n\nChange-Id: 1' });
    await repository.createBranch('control-plane/signed', change);
    const pull = await repository.openPullRequest({ branch: 'control-plane/signed', title: 'A signed change', body: '' });
    const merged = await repository.mergePullRequest(pull.number, { mergedBy: 'Ada <ada@example.org> (ada)' });
    for (const sha of [initial, change, merged.mergeCommitSha!]) assert.equal(await verify(gitDir, allowed, sha), true, `${sha} verifies`);
    const shown = await git(['-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'log', '--show-signature', '-1', merged.mergeCommitSha!], { gitDir });
    assert.match(shown, new RegExp(`Good "git" signature for control-plane@gsv\\.invalid with ED25519 key ${key.fingerprint.replace(/[+/]/g, '\\$&')}`));

    // What the service did not write does not verify: an engineer's unsigned commit, and one
    // signed with a key the allowed-signers file does not name.
    const tree = (await git(['rev-parse', `${merged.mergeCommitSha!}^{tree}`], { gitDir })).trim();
    const person = { GIT_AUTHOR_NAME: 'Erin', GIT_AUTHOR_EMAIL: 'erin@example.test', GIT_COMMITTER_NAME: 'Erin', GIT_COMMITTER_EMAIL: 'erin@example.test' };
    const unsigned = (await git(['commit-tree', tree, '-p', merged.mergeCommitSha!, '-m', 'by hand'], { gitDir, env: person })).trim();
    const other = await newKey('someone-else');
    const forged = (await git(['-c', 'gpg.format=ssh', '-c', `user.signingKey=${other}`, 'commit-tree', '-S', tree, '-p', merged.mergeCommitSha!, '-m', 'forged'], { gitDir, env: { ...person, GIT_COMMITTER_EMAIL: 'control-plane@gsv.invalid' } })).trim();
    assert.equal(await verify(gitDir, allowed, unsigned), false);
    assert.equal(await verify(gitDir, allowed, forged), false);
    await sequelize.close();
  });

  it('refuses, without printing the key, a key file others can read, one with a passphrase, and one that is no key', async () => {
    const open = await newKey('open', { mode: 0o644 });
    const locked = await newKey('locked', { passphrase: 'correct horse battery staple' });
    const junk = path.join(dir, 'junk');
    await fs.writeFile(junk, 'not a key at all\n', { mode: 0o600 });
    for (const [file, why] of [
      [open, /readable by group or others/],
      [locked, /not an unencrypted SSH private key/],
      [junk, /not an unencrypted SSH private key/],
      [path.join(dir, 'missing'), /is not a file/],
    ] as const) {
      await assert.rejects(loadSigningKey(file), (error: Error) => {
        assert.ok(error instanceof SigningKeyError);
        assert.match(error.message, why);
        assert.doesNotMatch(error.message, /PRIVATE KEY|AAAA/);
        return true;
      });
    }
    await assert.rejects(startInProcessService('signing-bad', { GITOPS_LOCAL_SIGNING_KEY: open }), ConfigError, 'start-up stops on a key ssh-keygen would refuse (main exits 78)');
  });

  it('the running service signs what it publishes and says how to verify it (GET /platform/allowed-signers)', async () => {
    const file = await newKey('service');
    const { app, caller, org } = await startServiceWithWorkspace('signing', { GITOPS_LOCAL_SIGNING_KEY: file });
    const sequelize = createSequelize({ url: app.databaseUrl, poolMax: 1, logger: createLogger('silent') });
    try {
      const answer = await fetch(`${app.url}/platform/allowed-signers`, { headers: caller.headers });
      assert.equal(answer.status, 200);
      const body = (await answer.json()) as { signedBy: string; allowedSigners: string };
      assert.equal(body.signedBy, 'control-plane');
      const allowed = path.join(dir, 'service_allowed_signers');
      await fs.writeFile(allowed, body.allowedSigners);
      let commit: string | null = null;
      for (let i = 0; i < 200 && !commit; i += 1) {
        const [row] = await sequelize.query<{ commit_sha: string | null }>(
          "SELECT c.commit_sha FROM change_requests c JOIN organizations o ON o.id = c.organization_id WHERE o.slug = $org AND c.kind = 'workspace.create'",
          { type: QueryTypes.SELECT, bind: { org } },
        );
        commit = row?.commit_sha ?? null;
        if (!commit) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(commit, 'the worker committed the workspace change');
      assert.equal(await verify(app.gitDir, allowed, commit), true);
      assert.equal((await fetch(`${app.url}/platform/allowed-signers`)).status, 401, 'authenticated like every call');
    } finally {
      await sequelize.close();
      await app.close();
    }
  });
});
