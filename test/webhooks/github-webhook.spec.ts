import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhooks } from '@octokit/webhooks';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { webhookRoutes } from '../../src/api/routes/webhook-routes.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { GithubSignatureVerifier } from '../../src/webhooks/github-signature.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { listen, type Listening } from '../support/http.ts';
import { changeRow, githubExample, insertOpenChange, instanceEvents, instanceState, pullRequestPayload, pushPayload } from '../support/webhook-fixtures.ts';

const SECRET = 'current-secret';
const OLD_SECRET = 'rotated-out-secret';
const sha = () => randomBytes(20).toString('hex');

describe('POST /webhooks/github', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let server: Listening;
  const signer = new Webhooks({ secret: SECRET });

  before(async () => {
    sequelize = createTestSequelize();
    const routes = webhookRoutes({
      sequelize,
      repository: { isAncestor: () => Promise.resolve(false) },
      baseBranch: 'main',
      // Counts the reads of main the receiver asks for; convergence itself has its own specs.
      converge: async () => {
        converged += 1;
        if (failConverge) throw new Error('GitHub answered 502 for the compare');
      },
      github: new GithubSignatureVerifier([SECRET, OLD_SECRET]),
      argocd: undefined,
    });
    const app = createApp({ logger: createLogger('silent'), metrics: createMetrics({ collectDefaults: false }), bodyLimitBytes: 5_000_000, routes, authenticate: async () => {} });
    server = await listen(app);
  });
  after(async () => {
    await server.close();
    await sequelize.close();
  });

  let converged = 0;
  let failConverge = false;
  async function deliver(event: string, body: string, headers: Record<string, string | undefined> = {}) {
    const all: Record<string, string | undefined> = {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': await signer.sign(body),
      ...headers,
    };
    const sent = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const response = await fetch(`${server.url}/webhooks/github`, { method: 'POST', headers: sent, body });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function deliveryRows(id: string) {
    return sequelize.query<{ attempts: number; processed_at: Date | null; last_error: string | null }>(
      `SELECT attempts, processed_at, last_error FROM webhook_deliveries WHERE source = 'github' AND delivery_key = $id`,
      { type: QueryTypes.SELECT, bind: { id } },
    );
  }

  it('merged pull_request: the change is merged at the merge commit and its instance goes syncing, caused by the delivery', async () => {
    const change = await insertOpenChange(sequelize, { commitSha: sha() });
    const merge = sha();
    const id = randomUUID();
    const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: change.pullRequestNumber, branch: change.branch, merged: true, mergeCommitSha: merge }));
    const response = await deliver('pull_request', body, { 'x-github-delivery': id });
    assert.equal(response.status, 200);
    assert.equal(response.body.duplicate, false);
    assert.deepEqual(await changeRow(sequelize, change.changeId), { status: 'merged', merge_commit_sha: merge });
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    const events = await instanceEvents(sequelize, change.instanceId);
    assert.deepEqual(events, [
      { from_state: 'pending_review', to_state: 'syncing', cause: 'github.pull_request.closed.merged', actor: 'github', change_id: change.changeId, delivery_id: id },
    ]);
    const [row] = await deliveryRows(id);
    assert.ok(row?.processed_at);
  });

  it('pull_request closed without merging rejects the instance; reopening reopens the change and the instance', async () => {
    const change = await insertOpenChange(sequelize, { commitSha: sha() });
    const closed = JSON.stringify(pullRequestPayload({ action: 'closed', number: change.pullRequestNumber, branch: change.branch, merged: false, mergeCommitSha: null }));
    assert.equal((await deliver('pull_request', closed)).status, 200);
    assert.equal((await changeRow(sequelize, change.changeId)).status, 'closed');
    assert.equal(await instanceState(sequelize, change.instanceId), 'rejected');

    const reopened = JSON.stringify(pullRequestPayload({ action: 'reopened', number: change.pullRequestNumber, branch: change.branch, merged: false, mergeCommitSha: null }));
    const response = await deliver('pull_request', reopened);
    assert.equal(response.status, 200);
    assert.equal((await changeRow(sequelize, change.changeId)).status, 'open');
    // A rejected instance is not over while its pull request can still be merged.
    assert.equal(await instanceState(sequelize, change.instanceId), 'pending_review');
    const [outcome] = response.body.outcome as Array<{ instance: { from: string; to: string | null } }>;
    assert.deepEqual(outcome!.instance, { id: change.instanceId, from: 'rejected', to: 'pending_review' });
  });

  it('matches a pull request by head branch when the worker has not recorded its number yet', async () => {
    const change = await insertOpenChange(sequelize, { commitSha: sha(), withNumber: false });
    const merge = sha();
    const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: 999_999, branch: change.branch, merged: true, mergeCommitSha: merge }));
    assert.equal((await deliver('pull_request', body)).status, 200);
    assert.deepEqual(await changeRow(sequelize, change.changeId), { status: 'merged', merge_commit_sha: merge });
  });

  it('push to the base branch reads main back once per delivery (convergence decides what landed); other branches do not', async () => {
    const before = converged;
    const id = randomUUID();
    const response = await deliver('push', JSON.stringify(pushPayload('refs/heads/main', [sha(), sha()])), { 'x-github-delivery': id });
    assert.equal(response.status, 200);
    assert.equal(converged, before + 1);
    assert.equal((await deliver('push', JSON.stringify(pushPayload('refs/heads/main', [sha()])), { 'x-github-delivery': id })).status, 200, 'a redelivery is answered');
    const elsewhere = await deliver('push', JSON.stringify(pushPayload('refs/heads/feature', [sha()])));
    assert.equal(elsewhere.status, 202);
    assert.equal(converged, before + 2, 'a redelivery converges again (it is idempotent), another branch never');
  });

  it('a delivery whose read of main fails is still recorded and answered 200 (the reconciler reads main later)', async () => {
    failConverge = true;
    try {
      const id = randomUUID();
      const response = await deliver('push', JSON.stringify(pushPayload('refs/heads/main', [sha()])), { 'x-github-delivery': id });
      assert.equal(response.status, 200);
      const [row] = await deliveryRows(id);
      assert.ok(row?.processed_at, 'recorded');
    } finally {
      failConverge = false;
    }
  });

  it('acknowledges events without an effect with 202 and records nothing', async () => {
    const id = randomUUID();
    const response = await deliver('issues', JSON.stringify(githubExample('issues')), { 'x-github-delivery': id });
    assert.equal(response.status, 202);
    assert.equal(response.body.status, 'ignored');
    assert.deepEqual(await deliveryRows(id), []);
    const opened = await deliver('pull_request', JSON.stringify(pullRequestPayload({ action: 'opened', number: 1, branch: 'x', merged: false, mergeCommitSha: null })));
    assert.equal(opened.status, 202);
  });

  it('accepts a signature made with an additional (rotated) secret', async () => {
    const change = await insertOpenChange(sequelize, { commitSha: sha() });
    const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: change.pullRequestNumber, branch: change.branch, merged: true, mergeCommitSha: sha() }));
    const response = await deliver('pull_request', body, { 'x-hub-signature-256': await new Webhooks({ secret: OLD_SECRET }).sign(body) });
    assert.equal(response.status, 200);
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
  });

  describe('rejects, with no effect', () => {
    const cases: Array<{ name: string; status: number; tamper: (body: string) => Promise<{ body: string; headers: Record<string, string | undefined> }> }> = [
      { name: 'a signature made with another secret', status: 401, tamper: async (body) => ({ body, headers: { 'x-hub-signature-256': await new Webhooks({ secret: 'wrong' }).sign(body) } }) },
      {
        name: 'a sha1= signature only (X-Hub-Signature)',
        status: 400,
        tamper: async (body) => ({ body, headers: { 'x-hub-signature-256': undefined, 'x-hub-signature': `sha1=${'0'.repeat(40)}` } }),
      },
      { name: 'a sha1= value in X-Hub-Signature-256', status: 400, tamper: async (body) => ({ body, headers: { 'x-hub-signature-256': `sha1=${'0'.repeat(40)}` } }) },
      { name: 'no signature header', status: 400, tamper: async (body) => ({ body, headers: { 'x-hub-signature-256': undefined } }) },
      { name: 'no delivery header', status: 400, tamper: async (body) => ({ body, headers: { 'x-github-delivery': undefined, 'x-hub-signature-256': await new Webhooks({ secret: SECRET }).sign(body) } }) },
      {
        name: 'a body altered by one byte',
        status: 401,
        tamper: async (body) => {
          const signature = await new Webhooks({ secret: SECRET }).sign(body);
          // One byte of a string value ('Hello-World' → 'Jello-World'): still valid JSON.
          const at = body.indexOf('Hello-World');
          assert.ok(at > 0);
          return { body: `${body.slice(0, at)}J${body.slice(at + 1)}`, headers: { 'x-hub-signature-256': signature } };
        },
      },
      {
        name: 'a body re-serialised (same JSON, other bytes)',
        status: 401,
        tamper: async (body) => ({ body: JSON.stringify(JSON.parse(body) as unknown, null, 2), headers: { 'x-hub-signature-256': await new Webhooks({ secret: SECRET }).sign(body) } }),
      },
    ];
    for (const { name, status, tamper } of cases) {
      it(name, async () => {
        const change = await insertOpenChange(sequelize, { commitSha: sha() });
        const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: change.pullRequestNumber, branch: change.branch, merged: true, mergeCommitSha: sha() }));
        const id = randomUUID();
        const tampered = await tamper(body);
        assert.ok(tampered.body !== body || Object.keys(tampered.headers).length > 0, 'the case must actually tamper');
        const response = await deliver('pull_request', tampered.body, { 'x-github-delivery': id, ...tampered.headers });
        assert.equal(response.status, status);
        assert.equal((await changeRow(sequelize, change.changeId)).status, 'open');
        assert.equal(await instanceState(sequelize, change.instanceId), 'pending_review');
        assert.deepEqual(await deliveryRows(id), []);
      });
    }
  });

  it('processes the same delivery once: a redelivery after success does nothing', async () => {
    const change = await insertOpenChange(sequelize, { commitSha: sha() });
    const id = randomUUID();
    const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: change.pullRequestNumber, branch: change.branch, merged: true, mergeCommitSha: sha() }));
    const responses = await Promise.all([1, 2, 3].map(() => deliver('pull_request', body, { 'x-github-delivery': id })));
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200]);
    assert.equal(responses.filter((r) => r.body.duplicate === false).length, 1);
    assert.equal((await instanceEvents(sequelize, change.instanceId)).length, 1);
    const [row] = await deliveryRows(id);
    assert.equal(row!.attempts, 3);
  });

  it('processes a redelivery of a delivery that failed', async () => {
    const change = await insertOpenChange(sequelize, { commitSha: sha() });
    const id = randomUUID();
    const body = JSON.stringify(pullRequestPayload({ action: 'closed', number: change.pullRequestNumber, branch: change.branch, merged: true, mergeCommitSha: sha() }));
    // Make the effect fail half-way (after the change row is updated, while writing the instance event).
    const fn = `fail_${change.instanceId.replaceAll('-', '')}`;
    await sequelize.query(`
      CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.instance_id = '${change.instanceId}' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER ${fn} BEFORE INSERT ON instance_events FOR EACH ROW EXECUTE FUNCTION ${fn}();`);
    try {
      const failed = await deliver('pull_request', body, { 'x-github-delivery': id });
      assert.equal(failed.status, 500);
      assert.equal((await changeRow(sequelize, change.changeId)).status, 'open', 'the failed attempt left nothing half-done');
      const [row] = await deliveryRows(id);
      assert.equal(row!.processed_at, null);
      assert.match(row!.last_error ?? '', /injected failure/);
    } finally {
      await sequelize.query(`DROP TRIGGER ${fn} ON instance_events; DROP FUNCTION ${fn}();`);
    }
    const redelivered = await deliver('pull_request', body, { 'x-github-delivery': id });
    assert.equal(redelivered.status, 200);
    assert.equal(redelivered.body.duplicate, false);
    assert.equal((await changeRow(sequelize, change.changeId)).status, 'merged');
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    const [row] = await deliveryRows(id);
    assert.equal(row!.attempts, 2);
    assert.ok(row!.processed_at);
  });
});
