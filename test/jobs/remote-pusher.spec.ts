import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { git } from '../../src/gitops/local/git.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { redactUrl, RemotePusher } from '../../src/jobs/remote-pusher.ts';
import { publishChanges } from '../../src/domain/changes/change-publisher.ts';
import { BATCH_BRANCH_PREFIX } from '../../src/domain/changes/change-kinds.ts';
import { claimBatch } from '../../src/domain/changes/change-queue.ts';
import { getChange } from '../../src/domain/changes/change-views.ts';
import { loadConfig } from '../../src/config.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';

async function pushes(metrics: Metrics, outcome: string): Promise<number> {
  return (await metrics.gitopsPushes.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('GITOPS_LOCAL_PUSH_URL: the local repository pushed to a remote', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  let remoteDir: string;
  let pusher: RemotePusher | undefined;

  before(() => (sequelize = createTestSequelize()));
  after(() => sequelize.close());
  beforeEach(async () => {
    gitops = await createLocalGitops(sequelize);
    remoteDir = path.join(gitops.dir, 'remote.git');
  });
  afterEach(async () => {
    await pusher?.stop();
    pusher = undefined;
    await gitops.cleanup();
  });

  const remote = async (...args: string[]) => (await git(args, { gitDir: remoteDir })).trim();
  const remoteBranch = (branch: string) => remote('rev-parse', '--verify', '--quiet', `refs/heads/${branch}`).catch(() => undefined);
  const initRemote = () => git(['init', '--quiet', '--bare', remoteDir], { gitDir: remoteDir });

  /** The harness's repository with the pusher hooked in, as the service builds it. */
  function pushingRepository(options: { url?: string; metrics?: Metrics; logger?: ReturnType<typeof createLogger> } = {}) {
    pusher = new RemotePusher({
      gitDir: gitops.repository.gitDir,
      url: options.url ?? remoteDir,
      baseBranch: 'main',
      ownedPrefix: BATCH_BRANCH_PREFIX,
      logger: options.logger ?? createLogger('silent'),
      metrics: options.metrics ?? createMetrics({ collectDefaults: false }),
      backoffScale: 0.01,
    });
    const p = pusher;
    return new LocalRepository({ gitDir: gitops.repository.gitDir, baseBranch: 'main', pullRequests: gitops.repository.pullRequests!, onRefMoved: () => p.notify() });
  }

  async function pendingChange() {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    return insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) });
  }

  it('puts the pull request branch and the merged base branch on the remote, at the same commits', async () => {
    await initRemote();
    const metrics = createMetrics({ collectDefaults: false });
    const repository = pushingRepository({ metrics });
    pusher!.start();
    await pusher!.flush();
    assert.equal(await remoteBranch('main'), await gitops.git('rev-parse', 'main'), 'the first push carries what is already there');

    const changeId = await pendingChange();
    await gitops.worker({ repository }).runOnce();
    const change = await getChange(sequelize, changeId);
    await pusher!.flush();
    assert.equal(await remoteBranch(change.branch!), change.commitSha);

    const merged = await repository.mergePullRequest(change.pullRequestNumber!);
    await pusher!.flush();
    assert.equal(await remoteBranch('main'), merged.mergeCommitSha);
    assert.equal(await remote('rev-list', '--count', 'main'), await gitops.git('rev-list', '--count', 'main'));
    assert.equal(await pushes(metrics, 'failed'), 0);
    assert.equal((await metrics.gitopsPushPending.get()).values[0]!.value, 0);
    assert.ok((await metrics.gitopsPushLastSuccess.get()).values[0]!.value > Date.now() / 1000 - 60);
  });

  it('commits while the remote is unavailable, and pushes them once it is back; ref moves in a burst share pushes', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const repository = pushingRepository({ metrics });
    const changeId = await pendingChange();
    // No remote yet: the commit and the PR happen anyway.
    await gitops.worker({ repository }).runOnce();
    const change = await getChange(sequelize, changeId);
    assert.equal(change.status, 'open');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok((await pushes(metrics, 'failed')) >= 1);
    assert.equal((await metrics.gitopsPushPending.get()).values[0]!.value, 1);

    // Ten more ref moves while it keeps failing: no push of its own each.
    const base = await gitops.git('rev-parse', 'main');
    for (let i = 0; i < 10; i += 1) await repository.createBranch(`${BATCH_BRANCH_PREFIX}burst-${i}`, base);
    await initRemote();
    await pusher!.flush();
    assert.equal(await remoteBranch(change.branch!), change.commitSha);
    assert.equal(await remoteBranch(`${BATCH_BRANCH_PREFIX}burst-9`), base);
    assert.equal(await remoteBranch('main'), base);
    assert.ok((await pushes(metrics, 'pushed')) <= 2, `pushes after the remote came back: ${await pushes(metrics, 'pushed')}`);
    const failed = await pushes(metrics, 'failed');
    assert.ok(failed < 15, `failed pushes: ${failed} (backoff)`);
  });

  it('forces only the branches the service owns: a rebuilt PR branch replaces the remote one, a diverged remote base branch is not overwritten', async () => {
    await initRemote();
    const repository = pushingRepository();
    await pendingChange();
    const batch = (await claimBatch(sequelize, { workerId: 'w', leaseMs: 60_000, windowMs: 0, maxBatch: 1 }))!;
    await publishChanges(repository, gitops.catalog, batch);
    await pusher!.flush();
    const first = (await remoteBranch(batch.branch))!;
    // The publisher rebuilds its branch on a moved base (landDirectly does this): a forced move.
    const main = await gitops.git('rev-parse', 'main');
    const moved = await gitops.repository.createCommit({ parent: main, changes: [{ path: 'docs/other.md', content: 'x\n' }], message: 'other' });
    await repository.updateBranch('main', moved, { expected: main });
    const rebuilt = await gitops.repository.createCommit({ parent: moved, changes: [{ path: 'docs/rebuilt.md', content: 'y\n' }], message: 'rebuilt' });
    await repository.updateBranch(batch.branch, rebuilt, { expected: first, force: true });
    await pusher!.flush();
    assert.equal(await remoteBranch(batch.branch), rebuilt);
    assert.equal(await remoteBranch('main'), moved);

    // Someone commits on the remote's main directly; our next base move must not overwrite it.
    const tree = await remote('rev-parse', 'main^{tree}');
    const theirs = (await git(['commit-tree', tree, '-p', moved, '-m', 'theirs'], { gitDir: remoteDir, env: { GIT_AUTHOR_NAME: 'x', GIT_AUTHOR_EMAIL: 'x@x', GIT_COMMITTER_NAME: 'x', GIT_COMMITTER_EMAIL: 'x@x' } })).trim();
    await remote('update-ref', 'refs/heads/main', theirs);
    await repository.updateBranch('main', rebuilt, { expected: moved });
    await repository.createBranch(`${BATCH_BRANCH_PREFIX}after`, rebuilt);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(await remoteBranch('main'), theirs, 'a non-fast-forward of the base branch is refused, not forced');
    assert.equal(await remoteBranch(`${BATCH_BRANCH_PREFIX}after`), rebuilt, 'the owned branches still went out');
    assert.equal(await gitops.git('rev-parse', 'main'), rebuilt, 'the local commit stands');
  });

  it('never logs the credentials of the URL', async () => {
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    const url = 'http://pusher:s3cr3t-token@127.0.0.1:9/gsv-gitops.git';
    const metrics = createMetrics({ collectDefaults: false });
    pushingRepository({ url, metrics, logger: createLogger('debug', stream) });
    pusher!.start();
    for (let i = 0; i < 50 && (await pushes(metrics, 'failed')) < 2; i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok((await pushes(metrics, 'failed')) >= 2);
    const log = lines.join('');
    assert.match(log, /push to the GitOps remote failed/);
    assert.doesNotMatch(log, /s3cr3t/);
    assert.match(log, /http:\/\/\*\*\*@127\.0\.0\.1:9/);
    assert.equal(redactUrl(`fatal: unable to access '${url}/': refused`, url), "fatal: unable to access 'http://***@127.0.0.1:9/gsv-gitops.git/': refused");
  });

  it('is configured by GITOPS_LOCAL_PUSH_URL, for the local driver only', () => {
    assert.equal(loadConfig({}).gitops.localPushUrl, undefined);
    assert.equal(loadConfig({ GITOPS_LOCAL_PUSH_URL: 'ssh://git@git.example/gsv-gitops.git' }).gitops.localPushUrl, 'ssh://git@git.example/gsv-gitops.git');
    assert.throws(
      () => loadConfig({ GITOPS_DRIVER: 'github', GITHUB_REPOSITORY: 'a/b', GITHUB_TOKEN: 't', GITOPS_LOCAL_PUSH_URL: 'https://u:secret@x/y.git' }),
      (error: Error) => /GITOPS_LOCAL_PUSH_URL applies to GITOPS_DRIVER=local only/.test(error.message) && !error.message.includes('secret'),
    );
  });
});
