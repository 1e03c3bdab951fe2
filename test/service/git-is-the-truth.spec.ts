import { instanceDir } from '../../src/gitops/tenant-paths.ts';
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
import { createCaller, type Caller } from '../support/scratch-service.ts';
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
    return (await git(['ls-tree', '--name-only', 'main', `${instanceDir(org, name, 'bucketed')}/`], { gitDir: app.gitDir })).trim() !== '';
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
    const spec = await specOnMain(app.gitDir, revision, `${instanceDir(org, row!.name, 'bucketed')}`);
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

  it('1. DELETE while the create PR is open: deleted without a Git change, the create PR closed, nothing runs, nothing is charged, the hold is released', async () => {
    // Issue 11 saw this end `ready` with desired state absent; issue 20: an instance main never
    // held needs no delete change at all.
    const id = await create('seq-one');
    const creation = await opened(id, 'instance.create');
    const deleted = await api('DELETE', `/instances/${id}`);
    assert.equal(deleted.status, 202);
    assert.equal(deleted.body.state, 'deleted', JSON.stringify(deleted.body));
    const view = await instance(id);
    assert.deepEqual(view.changes.map((c) => [c.kind, c.status]), [['instance.create', 'cancelled']], 'no delete change: nothing of it is on main');
    await withdrawn(creation.number, 'seq-one');
    const [closed] = await db.query<{ body: string }>('SELECT body FROM local_pull_requests WHERE number = $n', { type: QueryTypes.SELECT, bind: { n: creation.number } });
    assert.match(closed!.body, /cancelled by `truth-owner`/);
    assert.equal(await onMain('seq-one'), false);
    assert.equal(await metered(id), false);
    assert.equal(await hold(id), 'voided');
    const reborn = await create('seq-one'); // the name is free again
    await opened(reborn, 'instance.create'); // in a pull request of its own, before the next sequence's create
  });

  it('2. DELETE while the create PR is open, then a person reopens and merges the create: main holds it, so the instance is not deleted and its removal is proposed', async () => {
    const id = await create('seq-two');
    const creation = await opened(id, 'instance.create');
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    // The service withdraws the cancelled create; a person reopens and merges it anyway.
    await withdrawn(creation.number, 'seq-two');
    await personSets(creation, 'open');
    await personMerges(creation);
    assert.equal(await onMain('seq-two'), true);
    const view = await eventually('the instance follows main', () => instance(id), (v) => v.state !== 'deleted' && v.changes.length > 1);
    assert.notEqual(view.state, 'deleted', 'its directory is on main');
    const again = await api('POST', '/instances', { org, offering: 'studio', name: 'seq-two' });
    assert.equal(again.status, 409, 'the name is taken while its directory is on main');
    const proposal = view.changes.at(-1)!;
    assert.equal(proposal.kind, 'instance.delete', 'the service proposes the removal the user asked for');
    assert.ok(['pending', 'open'].includes(proposal.status));
    assert.match(String((await api('GET', `/instances/${id}`)).body.drift), /deleted before its create reached main/);
    // The removal merged: main holds nothing, the instance is gone for good.
    await personMerges(await opened(id, 'instance.delete'));
    assert.equal(await onMain('seq-two'), false);
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
    await withdrawn(creation.number, 'seq-six');
    await eventually('the old instance deleted', () => instance(old), (v) => v.state === 'deleted');
    const fresh = await create('seq-six');
    const freshCreation = await opened(fresh, 'instance.create');
    await personSets(creation, 'open');
    await personMerges(creation);
    assert.equal(await onMain('seq-six'), true);
    const view = await eventually('the old instance follows main', () => instance(old), (v) => v.state !== 'deleted' && v.changes.length > 1);
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

  it('7. with no Argo CD answering, a merged instance in syncing takes a DELETE: its files leave main after review, metering stops, its hold is voided, not settled', async () => {
    // Issue 20: this was 409 instance-busy ("The instance is syncing; it cannot be deleted now.").
    const id = await create('seq-seven');
    await personMerges(await opened(id, 'instance.create'));
    await eventually('main read back', () => instance(id), (v) => v.state === 'syncing');
    const deleted = await api('DELETE', `/instances/${id}`);
    assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
    assert.equal(deleted.body.state, 'deleting');
    await personMerges(await opened(id, 'instance.delete'));
    assert.equal(await onMain('seq-seven'), false);
    await eventually('main read back without it', () => instance(id), (v) => !(v as unknown as { observed: { present: boolean } }).observed.present);
    assert.equal(await metered(id), false, 'metering stops once the delete is on main');
    assert.equal(await hold(id), 'voided', 'never ready, and its directory left main: the setup fee is released');
  });

  it('7b. a ready instance deleted: metering stops once the delete is on main, before Argo CD removes anything, and its settled fee stays settled', async () => {
    const id = await create('seq-seven-b');
    await personMerges(await opened(id, 'instance.create'));
    await eventually('main read back', () => instance(id), (v) => v.state === 'syncing');
    await argocd(id, await head());
    assert.equal(await metered(id), true);
    assert.equal(await hold(id), 'settled');
    assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
    assert.equal(await metered(id), true, 'asked, not merged: it still runs');
    await personMerges(await opened(id, 'instance.delete'));
    await eventually('main read back without it', () => instance(id), (v) => !(v as unknown as { observed: { present: boolean } }).observed.present);
    assert.equal((await instance(id)).state, 'deleting', 'Argo CD has not removed it yet');
    assert.equal(await metered(id), false);
    assert.equal(await hold(id), 'settled');
  });

  it('8. with no Argo CD answering, a merged instance in syncing takes two PATCHes in a row: main and the API end with the second, the first is withdrawn', async () => {
    const id = await create('seq-eight');
    await personMerges(await opened(id, 'instance.create'));
    await eventually('main read back', () => instance(id), (v) => v.state === 'syncing');
    const first = await api('PATCH', `/instances/${id}`, { parameters: { size: 'medium' } });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const firstChange = await opened(id, 'instance.update');
    const second = await api('PATCH', `/instances/${id}`, { parameters: { size: 'large' } });
    assert.equal(second.status, 202, JSON.stringify(second.body));
    assert.equal((second.body.desired as { parameters: { size: string } }).parameters.size, 'large');
    await withdrawn(firstChange.number, 'seq-eight');
    const secondChange = await eventually('the second update opened', () => instance(id), (v) => v.changes.some((c) => c.kind === 'instance.update' && c.id !== firstChange.id && c.pullRequestNumber !== null));
    const pr = secondChange.changes.find((c) => c.kind === 'instance.update' && c.id !== firstChange.id)!;
    await personMerges({ number: pr.pullRequestNumber!, branch: pr.branch! });
    const view = await eventually('the row follows main', () => instance(id), (v) => v.parameters.size === 'large');
    assert.equal(view.parameters.size, 'large');
    assert.equal(view.changes.find((c) => c.id === firstChange.id)!.status, 'superseded');
    const spec = await specOnMain(app.gitDir, await head(), `${instanceDir(org, 'seq-eight', 'bucketed')}`);
    assert.equal(spec?.parameters.size, 'large', 'main holds the second');
  });

  describe('cancel (issue 20): the requester withdraws a change, and the instance goes back to what main holds', () => {
    const cancel = (changeId: string, as: Caller = caller) =>
      fetch(`${app.url}/changes/${changeId}/cancel`, { method: 'POST', headers: as.headers }).then(async (r) => ({ status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as Record<string, unknown> }));

    async function closedWith(number: number): Promise<string> {
      await eventually(`pull request #${number} closed`, async () => (await person.getPullRequest(number))?.state, (state) => state === 'closed');
      const [row] = await db.query<{ body: string }>('SELECT body FROM local_pull_requests WHERE number = $n', { type: QueryTypes.SELECT, bind: { n: number } });
      return row!.body;
    }

    async function readyInstance(name: string): Promise<string> {
      const id = await create(name);
      await personMerges(await opened(id, 'instance.create'));
      await eventually('main read back', () => instance(id), (v) => v.state === 'syncing');
      await argocd(id, await head());
      assert.equal((await instance(id)).state, 'ready');
      return id;
    }

    it('an open create: the change is cancelled, its pull request closed naming who cancelled it, the instance rejected and its hold voided; again: the same answer', async () => {
      const id = await create('cancel-create');
      const creation = await opened(id, 'instance.create');
      const cancelled = await cancel(creation.id);
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      assert.equal(cancelled.body.status, 'cancelled');
      assert.equal(cancelled.body.cancelledBy, caller.subject);
      const view = await instance(id);
      assert.equal(view.state, 'rejected');
      assert.equal(await hold(id), 'voided');
      const events = (await api('GET', `/instances/${id}`)).body.events as { cause: string; actor: string; changeId: string }[];
      assert.ok(events.some((e) => e.cause === 'change.cancelled' && e.actor === caller.subject && e.changeId === creation.id), JSON.stringify(events));
      assert.match(await closedWith(creation.number), new RegExp(`cancelled by \`${caller.subject}\``));
      assert.equal(await onMain('cancel-create'), false);
      const again = await cancel(creation.id);
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, { ...cancelled.body, updatedAt: again.body.updatedAt }, 'idempotent');
    });

    it('an open update of a ready instance: back to ready on the spec main holds; a merged change is a 409 that says what to do instead', async () => {
      const id = await readyInstance('cancel-update');
      const before = await instance(id);
      assert.equal((await api('PATCH', `/instances/${id}`, { parameters: { size: 'large' } })).status, 202);
      const update = await opened(id, 'instance.update');
      assert.equal((await instance(id)).state, 'updating');
      assert.equal((await cancel(update.id)).status, 200);
      const view = (await api('GET', `/instances/${id}`)).body as { state: string; parameters: Record<string, unknown>; desired: { parameters: Record<string, unknown> }; conditions: { type: string; status: string; reason: string }[] };
      assert.equal(view.state, 'ready');
      assert.deepEqual(view.desired.parameters, before.parameters, 'what is asked is what main holds again');
      assert.deepEqual(view.conditions.find((c) => c.type === 'Synced'), { ...view.conditions.find((c) => c.type === 'Synced')!, status: 'True', reason: 'ChangeCancelled' });
      await closedWith(update.number);
      assert.equal(await metered(id), true, 'it runs on, and is billed');
      const creation = before.changes.find((c) => c.kind === 'instance.create')!;
      const refused = await cancel(creation.id);
      assert.equal(refused.status, 409);
      assert.match(String(refused.type), /application\/problem\+json/);
      assert.equal(refused.body.code, 'change-merged');
      assert.match(String(refused.body.detail), /PATCH the instance .* or DELETE it/);
    });

    it('an open delete of a ready instance: the instance is wanted again and stays ready; a PATCH is accepted afterwards', async () => {
      const id = await readyInstance('cancel-delete');
      assert.equal((await api('DELETE', `/instances/${id}`)).status, 202);
      const removal = await opened(id, 'instance.delete');
      assert.equal((await instance(id)).state, 'deleting');
      const busy = await api('PATCH', `/instances/${id}`, { parameters: { size: 'large' } });
      assert.equal(busy.status, 409, 'a PATCH of an instance being deleted cannot mean anything');
      assert.ok(String(busy.body.detail).includes(`POST /changes/${removal.id}/cancel`), 'and says what to do instead');
      assert.equal((await cancel(removal.id)).status, 200);
      const view = (await api('GET', `/instances/${id}`)).body as { state: string; desiredState: string };
      assert.deepEqual([view.state, view.desiredState], ['ready', 'present']);
      await closedWith(removal.number);
      assert.equal(await onMain('cancel-delete'), true);
      assert.equal((await api('PATCH', `/instances/${id}`, { parameters: { size: 'large' } })).status, 202);
    });

    it('only the requester or an owner may cancel; another org learns nothing (404)', async () => {
      const id = await create('cancel-who');
      const creation = await opened(id, 'instance.create');
      const colleague = await createCaller(app.databaseUrl, `truth-colleague-${crypto.randomUUID().slice(0, 8)}`);
      const [orgRow] = await db.query<{ id: string }>('SELECT id FROM organizations WHERE slug = $org', { type: QueryTypes.SELECT, bind: { org } });
      await db.query("INSERT INTO users (subject) VALUES ($s) ON CONFLICT DO NOTHING", { bind: { s: colleague.subject } });
      await db.query("INSERT INTO memberships (organization_id, subject, role) VALUES ($org, $s, 'member')", { bind: { org: orgRow!.id, s: colleague.subject } });
      const stranger = await createCaller(app.databaseUrl, `truth-stranger-${crypto.randomUUID().slice(0, 8)}`);
      assert.equal((await api('GET', `/changes/${creation.id}`)).status, 200, 'the requester reads its change');
      const refused = await cancel(creation.id, colleague);
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal((await cancel(creation.id, stranger)).status, 404);
      assert.equal((await fetch(`${app.url}/changes/${creation.id}`, { headers: stranger.headers })).status, 404);
      assert.equal((await instance(id)).state, 'pending_review', 'nothing was cancelled');
    });
  });
});
