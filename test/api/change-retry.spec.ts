import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { changeRoutes } from '../../src/api/routes/change-routes.ts';
import { RepositoryRejectedError, type GitopsRepository } from '../../src/gitops/repository.ts';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';
import type { LocalGitops } from '../support/gitops-harness.ts';

/**
 * POST /changes/:id/retry (issue 20) through the HTTP API, on real PostgreSQL and real git: a
 * change that failed for good is proposed again as a new change with the same payload, and the
 * instance follows. The failure is GitHub's: a 4xx that retrying cannot fix becomes a
 * RepositoryRejectedError (github-repository.ts, "4xx answers that retrying cannot fix"), which
 * the worker records as terminal (change-worker.ts); here the repository refuses the first pull
 * request it is asked to open, as GitHub does for a repository whose rules reject it until an
 * operator fixes them.
 */
describe('retrying a failed change', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let gitops: LocalGitops;
  let token: string;
  let org: string;
  let refusals = 0;

  before(async () => {
    api = await startApiHarness({
      moreRoutes: (sequelize, harnessGitops) => {
        gitops = harnessGitops;
        return changeRoutes({ sequelize, repository: gitops.repository, mergePolicy: 'pull-request', billing: { holdTtlSeconds: 3600 } });
      },
    });
    token = await api.tokenFor(uniqueUser('retrier'));
    org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    while (await gitops.worker().runOnce()); // the workspace's change
  });
  after(() => api.close());

  /** One worker pass whose repository refuses `refuse` pull requests first (GitHub's 422). */
  async function publish(refuse = 0): Promise<void> {
    refusals = refuse;
    const openPullRequest: GitopsRepository['openPullRequest'] = async (input) => {
      if (refusals > 0) {
        refusals -= 1;
        throw new RepositoryRejectedError('GitHub answered 422: Repository rule violations found (pull requests are not allowed from this branch)');
      }
      return gitops.repository.openPullRequest(input);
    };
    // The real local repository for everything else (bound: it keeps private state).
    const repository = new Proxy(gitops.repository, {
      get: (target, property) => {
        if (property === 'openPullRequest') return openPullRequest;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    while (await gitops.worker({ repository }).runOnce());
  }

  const instance = async (id: string) => (await api.call('GET', `/instances/${id}`, { token })).body as { state: string; changes: { id: string; kind: string; status: string }[]; conditions: { type: string; reason: string }[] };
  const holds = async (id: string) =>
    (await api.sequelize.query<{ status: string }>('SELECT status FROM billing_authorizations WHERE reference = $id ORDER BY created_at', { type: QueryTypes.SELECT, bind: { id } })).map((r) => r.status);

  it('a failed create: the retry is a new change with the same payload, the instance requested again with a new hold, and then its pull request opens', async () => {
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'retry-me' } });
    assert.equal(created.status, 202);
    const id = created.body.id as string;
    await publish(1);
    const failed = await instance(id);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.conditions.find((c) => c.type === 'Synced')!.reason, 'ChangeFailed');
    assert.deepEqual(await holds(id), ['voided'], 'a create that failed releases its hold');
    const original = failed.changes[0]!;

    const retried = await api.call('POST', `/changes/${original.id}/retry`, { token });
    assert.equal(retried.status, 202, JSON.stringify(retried.body));
    assert.notEqual(retried.body.id, original.id);
    assert.equal(retried.body.retryOf, original.id);
    assert.equal(retried.body.status, 'pending');
    const [payloads] = await api.sequelize.query<{ same: boolean }>('SELECT a.payload = b.payload AS same FROM change_requests a, change_requests b WHERE a.id = $a AND b.id = $b', {
      type: QueryTypes.SELECT,
      bind: { a: original.id, b: retried.body.id },
    });
    assert.ok(payloads!.same, 'the same payload');
    assert.equal((await instance(id)).state, 'requested');
    assert.deepEqual(await holds(id), ['voided', 'pending'], 'the setup fee is held again');
    const again = await api.call('POST', `/changes/${original.id}/retry`, { token });
    assert.equal(again.status, 200, 'retrying the same failed change answers its retry');
    assert.equal(again.body.id, retried.body.id);

    await publish();
    const view = await instance(id);
    assert.equal(view.state, 'pending_review');
    assert.deepEqual(view.changes.map((c) => c.status), ['failed', 'open']);
    const events = (await api.call('GET', `/instances/${id}`, { token })).body.events as { cause: string }[];
    assert.ok(events.some((e) => e.cause === 'change.retried'));
  });

  it('refuses what cannot be retried: a change that did not fail, one a later request replaced, another org (404)', async () => {
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'retry-not' } });
    const id = created.body.id as string;
    await publish();
    const open = (await instance(id)).changes[0]!;
    const refused = await api.call('POST', `/changes/${open.id}/retry`, { token });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'change-not-failed');

    const stranger = await api.tokenFor(uniqueUser('stranger'));
    await api.call('POST', '/orgs/auto', { token: stranger });
    assert.equal((await api.call('POST', `/changes/${open.id}/retry`, { token: stranger })).status, 404);

    // A failed update replaced by a later PATCH: the later one is what is asked now.
    const other = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'retry-old' } });
    const otherId = other.body.id as string;
    await publish(1);
    const failedCreate = (await instance(otherId)).changes[0]!;
    assert.equal(failedCreate.status, 'failed');
    assert.equal((await api.call('PATCH', `/instances/${otherId}`, { token, body: { parameters: { size: 'large' } } })).status, 202);
    const outdated = await api.call('POST', `/changes/${failedCreate.id}/retry`, { token });
    assert.equal(outdated.status, 409);
    assert.equal(outdated.body.code, 'change-outdated');
    assert.equal(refusals, 0);
  });
});
