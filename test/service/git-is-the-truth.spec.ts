import assert from 'node:assert/strict';
import { Webhooks } from '@octokit/webhooks';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createSequelize } from '../../src/db/database.ts';
import { git } from '../../src/gitops/local/git.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { createLogger } from '../../src/logger.ts';
import type { ArgocdNotification } from '../../src/webhooks/argocd-notification.ts';
import { freshNotices } from '../support/argocd-notices.ts';
import { specOnMain } from '../support/spec-on-main.ts';
import { useSpecDatabase } from '../support/database.ts';
import { startServiceWithWorkspace, type InProcessService } from '../support/in-process-service.ts';
import type { Caller } from '../support/scratch-service.ts';
import { pullRequestPayload } from '../support/webhook-fixtures.ts';

const GITHUB_SECRET = 'git-is-the-truth-webhook-secret';
const ARGOCD_TOKEN = 'git-is-the-truth-argocd-token';

interface InstanceView {
  id: string;
  state: string;
  parameters: Record<string, unknown>;
  changes: { id: string; kind: string; status: string; pullRequestNumber: number | null; branch: string | null }[];
}

/**
 * The five sequences of issue 11, as people cause them: the whole service (worker, webhook
 * receivers, convergence) on the local driver with signed GitHub webhooks, and "a person" who
 * merges, closes and reopens pull requests in GitHub's UI (here: the local pull request rows and
 * the bare repository, then the webhook GitHub would send). Each ends with the same question:
 * does the database agree with main?
 */
describe('Git is the truth: the database agrees with main whatever people do in GitHub', function () {
  useSpecDatabase();
  this.timeout(60_000);
  let app: InProcessService;
  let caller: Caller;
  let org: string;
  let db: Sequelize;
  let person: LocalRepository;
  const signer = new Webhooks({ secret: GITHUB_SECRET });

  before(async () => {
    ({ app, caller, org } = await startServiceWithWorkspace('truth', { GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, ARGOCD_WEBHOOK_TOKEN: ARGOCD_TOKEN, GITOPS_MERGE_POLICY: 'pull-request' }));
    db = createSequelize({ url: app.databaseUrl, poolMax: 2, logger: createLogger('silent') });
    person = new LocalRepository({ gitDir: app.gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize: db, repository: app.gitDir }) });
    // The workspace's change in a pull request of its own, so each instance's create is alone in its batch.
    await eventually('the workspace change published', async () => {
      const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM change_requests WHERE status = 'pending'", { type: QueryTypes.SELECT });
      return row!.n;
    }, (n) => n === 0);
  });
  after(async () => {
    await db?.close();
    await app?.close();
  });

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${app.url}${path}`, {
      method,
      headers: { ...caller.headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const instance = async (id: string) => (await api('GET', `/instances/${id}`)).body as unknown as InstanceView;

  async function eventually<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    let last: T | undefined;
    for (let i = 0; i < 150; i += 1) {
      last = await read();
      if (done(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`${what} never happened; last seen ${JSON.stringify(last)}`);
  }

  /** The instance's change of `kind` once the worker has opened its pull request. */
  async function opened(id: string, kind: string) {
    const view = await eventually(`a ${kind} pull request of ${id}`, () => instance(id), (v) => v.changes.some((c) => c.kind === kind && c.pullRequestNumber !== null));
    const change = [...view.changes].reverse().find((c) => c.kind === kind && c.pullRequestNumber !== null)!;
    return { id: change.id, number: change.pullRequestNumber!, branch: change.branch! };
  }

  async function deliver(event: string, payload: unknown): Promise<void> {
    const body = JSON.stringify(payload);
    const response = await fetch(`${app.url}/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': await signer.sign(body) },
      body,
    });
    assert.ok(response.status < 300, `GitHub delivery answered ${response.status}: ${await response.text()}`);
  }

  /** A person clicks "Close pull request" (or "Reopen"); GitHub sends its webhook. */
  async function personSets(pr: { number: number; branch: string }, state: 'closed' | 'open'): Promise<void> {
    await db.query('UPDATE local_pull_requests SET state = $state WHERE number = $number', { bind: { state, number: pr.number } });
    await deliver('pull_request', pullRequestPayload({ action: state === 'closed' ? 'closed' : 'reopened', number: pr.number, branch: pr.branch, merged: false, mergeCommitSha: null }));
  }

  /** A person clicks "Merge pull request"; GitHub sends closed+merged and the push. */
  async function personMerges(pr: { number: number; branch: string }): Promise<void> {
    const merged = await person.mergePullRequest(pr.number);
    await deliver('pull_request', pullRequestPayload({ action: 'closed', number: pr.number, branch: pr.branch, merged: true, mergeCommitSha: merged.mergeCommitSha! }));
  }

  async function onMain(name: string): Promise<boolean> {
    return (await git(['ls-tree', '--name-only', 'main', `tenants/${org}/apps/${name}/`], { gitDir: app.gitDir })).trim() !== '';
  }

  async function create(name: string): Promise<string> {
    const response = await api('POST', '/instances', { org, offering: 'studio', name });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return String(response.body.id);
  }

  async function hold(id: string): Promise<string | undefined> {
    const [row] = await db.query<{ status: string }>('SELECT status FROM billing_authorizations WHERE reference = $id', { type: QueryTypes.SELECT, bind: { id } });
    return row?.status;
  }

  /** What metering would charge: main holds it, it ran, and nothing suspended it. */
  async function metered(id: string): Promise<boolean> {
    const [row] = await db.query<{ metered: boolean }>(
      `SELECT observed_state = 'present' AND running_since IS NOT NULL AND NOT suspended AS metered FROM instances WHERE id = $id`,
      { type: QueryTypes.SELECT, bind: { id } },
    );
    return row!.metered;
  }

  /** Argo CD's parent and instance Application report main's spec applied and healthy. */
  async function argocd(id: string, revision: string, change: (n: ArgocdNotification) => void = () => {}): Promise<void> {
    const [row] = await db.query<{ name: string }>('SELECT name FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id } });
    const spec = await specOnMain(app.gitDir, revision, `tenants/${org}/apps/${row!.name}`);
    assert.ok(spec, `main holds no spec of ${row!.name} at ${revision}`);
    for (const n of freshNotices({ instanceId: id, orgSlug: org, instanceName: row!.name, spec }, revision, change)) {
      const response = await fetch(`${app.url}/webhooks/argocd`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ARGOCD_TOKEN}` },
        body: JSON.stringify(n),
      });
      assert.ok(response.status === 200, `${response.status}: ${await response.text()}`);
    }
  }

  /**
   * The service withdrew a superseded change: its pull request closed, or (when the batch PR
   * carries other changes, such as the workspace's) the instance's files taken off its branch.
   */
  async function withdrawn(number: number, name: string): Promise<void> {
    await eventually(`the superseded change of ${name} withdrawn`, async () => {
      const pr = await person.getPullRequest(number);
      if (!pr || pr.state !== 'open') return pr?.state ?? 'gone';
      const diff = await git(['diff', '--name-only', 'main', pr.branch], { gitDir: app.gitDir });
      return diff.includes(`/apps/${name}/`) ? 'open, still carrying it' : 'trimmed';
    }, (state) => state === 'closed' || state === 'trimmed');
  }

  const head = async () => (await git(['rev-parse', 'main'], { gitDir: app.gitDir })).trim();

  it('1. DELETE while the create PR is open, then the delete PR closed: nothing runs, nothing is charged, the hold is released', async () => {
    const id = await create('seq-one');
    await opened(id, 'instance.create');
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    const removal = await opened(id, 'instance.delete');
    await personSets(removal, 'closed');
    const creation = (await instance(id)).changes.find((c) => c.kind === 'instance.create')!;
    assert.equal(creation.status, 'superseded');
    await withdrawn(creation.pullRequestNumber!, 'seq-one');
    const view = await eventually('the instance settles', () => instance(id), (v) => v.state !== 'deleting');
    assert.equal(await onMain('seq-one'), false);
    assert.ok(['deleted', 'rejected'].includes(view.state), `nothing of it is on main, yet it is ${view.state}`);
    assert.equal(await metered(id), false);
    assert.equal(await hold(id), 'voided');
  });

  it('2. DELETE while the create PR is open, delete merged first and the create after: main holds it, so the instance is not deleted and its removal is proposed', async () => {
    const id = await create('seq-two');
    const creation = await opened(id, 'instance.create');
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    const removal = await opened(id, 'instance.delete');
    // The service withdraws the superseded create; a person reopens it anyway, after merging the delete.
    await withdrawn(creation.number, 'seq-two');
    await personMerges(removal);
    await personSets(creation, 'open');
    await personMerges(creation);
    assert.equal(await onMain('seq-two'), true);
    const view = await eventually('the instance follows main', () => instance(id), (v) => v.state !== 'deleted' && v.changes.length > 2);
    assert.notEqual(view.state, 'deleted', 'its directory is on main');
    const again = await api('POST', '/instances', { org, offering: 'studio', name: 'seq-two' });
    assert.equal(again.status, 409, 'the name is taken while its directory is on main');
    const proposal = view.changes.at(-1)!;
    assert.equal(proposal.kind, 'instance.delete', 'the service proposes the removal the user asked for');
    assert.ok(['pending', 'open'].includes(proposal.status));
    assert.match(String((await api('GET', `/instances/${id}`)).body.drift), /deletion was merged/);
  });

  it('3. a create PR closed (rejected), reopened and merged: main holds it, the instance is deployed and can be deleted', async () => {
    const id = await create('seq-three');
    const creation = await opened(id, 'instance.create');
    await personSets(creation, 'closed');
    assert.equal((await eventually('rejected', () => instance(id), (v) => v.state === 'rejected')).state, 'rejected');
    await personSets(creation, 'open');
    await personMerges(creation);
    assert.equal(await onMain('seq-three'), true);
    const view = await eventually('the instance follows main', () => instance(id), (v) => v.state === 'syncing');
    assert.equal(view.state, 'syncing');
    await argocd(id, await head());
    assert.equal((await instance(id)).state, 'ready');
    assert.equal(await metered(id), true);
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    assert.equal((await api('POST', '/instances', { org, offering: 'studio', name: 'seq-three' })).status, 409);
  });

  it('4. an update PR closed, reopened and merged: the row says what main holds, and metering bills that version', async () => {
    const id = await create('seq-four');
    await personMerges(await opened(id, 'instance.create'));
    await argocd(id, await head());
    const before = await instance(id);
    assert.equal(before.state, 'ready');
    assert.equal((await api('PATCH', `/instances/${id}`, { parameters: { size: 'large' } })).status, 202);
    const update = await opened(id, 'instance.update');
    await personSets(update, 'closed');
    assert.equal((await instance(id)).parameters.size, before.parameters.size, 'closed: main still holds the old parameters');
    await personSets(update, 'open');
    await personMerges(update);
    const view = await eventually('the row follows main', () => instance(id), (v) => v.parameters.size === 'large');
    assert.equal(view.parameters.size, 'large');
    const [row] = await db.query<{ same: boolean }>(
      'SELECT offering_version_id = observed_offering_version_id AND parameters = observed_parameters AS same FROM instances WHERE id = $id',
      { type: QueryTypes.SELECT, bind: { id } },
    );
    assert.ok(row!.same, 'the version metering prices is the one main holds');
  });

  it('5. an Argo CD notice with deletionTimestamp while the delete change is still open does not mark the instance deleted', async () => {
    const id = await create('seq-five');
    await personMerges(await opened(id, 'instance.create'));
    await argocd(id, await head());
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    await opened(id, 'instance.delete');
    await argocd(id, await head(), (n) => {
      n.app.deletionTimestamp = new Date().toISOString();
    });
    const view = await instance(id);
    assert.notEqual(view.state, 'deleted', 'the delete is not merged: main still holds the instance');
    assert.equal(await onMain('seq-five'), true);
  });

  it('6. a name taken again after a delete, then the old create reopened and merged: main holds the old instance, so it lives and the new one yields', async () => {
    // Found by the model suite (2,000 sequences): convergence moved the old instance out of
    // `deleted` while the new one held the name, violated instances_org_name_live, and every
    // later read of main failed for every tenant.
    const old = await create('seq-six');
    const creation = await opened(old, 'instance.create');
    assert.equal((await api('DELETE', `/instances/${old}`)).status, 202);
    const removal = await opened(old, 'instance.delete');
    await withdrawn(creation.number, 'seq-six');
    await personMerges(removal);
    await eventually('the old instance deleted', () => instance(old), (v) => v.state === 'deleted');
    const fresh = await create('seq-six');
    const freshCreation = await opened(fresh, 'instance.create');
    await personSets(creation, 'open');
    await personMerges(creation);
    assert.equal(await onMain('seq-six'), true);
    const view = await eventually('the old instance follows main', () => instance(old), (v) => v.state !== 'deleted' && v.changes.length > 2);
    assert.notEqual(view.state, 'deleted', 'main holds its directory');
    assert.equal(view.changes.at(-1)!.kind, 'instance.delete', 'as in sequence 2, the removal its user asked for is proposed again');
    const yielded = await eventually('the new instance yields the name', () => instance(fresh), (v) => v.state === 'deleted');
    assert.equal(yielded.state, 'deleted');
    assert.equal(await hold(fresh), 'voided', 'it never ran: its setup-fee hold is released');
    assert.equal(yielded.changes.at(-1)!.status, 'superseded', "the yielding instance's create is withdrawn");
    // Its pull request is closed: merged, it would put the yielding instance back over the one main holds.
    await eventually("the yielding instance's pull request closed", async () => (await person.getPullRequest(freshCreation.number))?.state, (state) => state === 'closed');
    const [closed] = await db.query<{ body: string }>('SELECT body FROM local_pull_requests WHERE number = $n', { type: QueryTypes.SELECT, bind: { n: freshCreation.number } });
    assert.match(closed!.body, /withdrawn: main holds another instance at its path/);
    assert.equal((await api('POST', '/instances', { org, offering: 'studio', name: 'seq-six' })).status, 409, 'the name is held by what main holds');
    // Convergence still reads main for everyone: the next merge is observed.
    const other = await create('seq-six-after');
    await personMerges(await opened(other, 'instance.create'));
    assert.equal((await eventually('a later create observed', () => instance(other), (v) => v.state === 'syncing')).state, 'syncing');
  });
});
