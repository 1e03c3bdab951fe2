import assert from 'node:assert/strict';
import { Webhooks } from '@octokit/webhooks';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createSequelize } from '../../src/db/database.ts';
import { git } from '../../src/gitops/local/git.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { createLogger } from '../../src/logger.ts';
import { useSpecDatabase } from '../support/database.ts';
import { startInProcessService, type InProcessService } from '../support/in-process-service.ts';
import { prepareInstanceCaller } from '../support/instance-caller.ts';
import { createCaller, type Caller } from '../support/scratch-service.ts';
import { pullRequestPayload } from '../support/webhook-fixtures.ts';

const GITHUB_SECRET = 'model-repro-webhook-secret';

/**
 * Minimal reproductions of what the model run (model-convergence.spec.ts) found, replayed step
 * by step so they do not depend on timing. Skipped while the bug stands (see each case).
 */
describe('model findings, replayed', function () {
  useSpecDatabase();
  this.timeout(60_000);
  let app: InProcessService;
  let caller: Caller;
  let org: string;
  let db: Sequelize;
  let person: LocalRepository;
  const signer = new Webhooks({ secret: GITHUB_SECRET });

  before(async () => {
    app = await startInProcessService('model_repro', {
      GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
      ARGOCD_WEBHOOK_TOKEN: 'model-repro-argocd-token',
      SYNC_SIMULATOR: 'false',
      RECONCILE_INTERVAL_MS: '3600000',
      GITOPS_BATCH_WINDOW_MS: '0',
      GITOPS_MERGE_POLICY: 'pull-request',
    });
    caller = await createCaller(app.databaseUrl, 'repro-owner');
    const admin = await createCaller(app.databaseUrl, 'repro-admin', true);
    org = (await prepareInstanceCaller(app.url, caller, admin, 1_000_000)).org;
    db = createSequelize({ url: app.databaseUrl, poolMax: 2, logger: createLogger('silent') });
    person = new LocalRepository({ gitDir: app.gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize: db, repository: app.gitDir }) });
  });
  after(async () => {
    await db?.close();
    await app?.close();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${app.url}${path}`, { method, headers: { ...caller.headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> };
  };
  async function opened(id: string, kind: string): Promise<{ number: number; branch: string }> {
    for (let i = 0; i < 150; i += 1) {
      const [row] = await db.query<{ number: number; branch: string }>(
        `SELECT pull_request_number AS number, branch FROM change_requests WHERE instance_id = $id AND kind = $kind AND pull_request_number IS NOT NULL ORDER BY created_at DESC LIMIT 1`,
        { type: QueryTypes.SELECT, bind: { id, kind } },
      );
      if (row) return row;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no ${kind} pull request for ${id}`);
  }
  async function personMerges(pr: { number: number; branch: string }): Promise<void> {
    const merged = await person.mergePullRequest(pr.number);
    const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: pr.number, branch: pr.branch, merged: true, mergeCommitSha: merged.mergeCommitSha! }));
    const response = await fetch(`${app.url}/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': await signer.sign(body) },
      body,
    });
    assert.ok(response.status < 300);
  }

  // BUG (found by the model run under FAULTS_MODEL_CONCURRENCY=4, seed 20261128, runs 1 and 17):
  // a DELETE while the create PR is open opens a delete PR cut from a main that does not hold the
  // instance, so its branch removes nothing. When main is read back after the create's merge and
  // before the delete's, the delete's merge commit touches no path of the instance: convergence
  // records the delete merged but never looks at the directory, so no removal is proposed. The
  // instance stays `deleting` for good while main holds it (Argo CD runs it; it is not metered).
  // Expected: main no longer holds it, or the service proposes its removal (as when the two
  // merges are read back together, git-is-the-truth sequence 2). Unskip when src/ is fixed.
  it.skip('DELETE while the create PR is open, create merged and read back, then the delete merged: the removal is proposed', async () => {
    const created = await api('POST', '/instances', { org, offering: 'studio', name: 'repro-one' });
    assert.equal(created.status, 202);
    const id = String(created.body.id);
    const creation = await opened(id, 'instance.create');
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    const removal = await opened(id, 'instance.delete');
    await personMerges(creation);
    await personMerges(removal);
    const onMain = (await git(['ls-tree', '--name-only', 'main', `tenants/${org}/apps/repro-one/`], { gitDir: app.gitDir })).trim() !== '';
    const changes = await db.query<{ kind: string; status: string }>('SELECT kind, status FROM change_requests WHERE instance_id = $id ORDER BY created_at', { type: QueryTypes.SELECT, bind: { id } });
    const [row] = await db.query<{ state: string }>('SELECT state::text FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id } });
    const proposed = changes.slice(2).some((c) => c.kind === 'instance.delete' && ['pending', 'open'].includes(c.status));
    assert.ok(!onMain || proposed, `main holds it, it is ${row!.state}, and no removal is proposed: ${JSON.stringify(changes)}`);
  });
});
