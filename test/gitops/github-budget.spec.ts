import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { GithubBudget, type BudgetClock } from '../../src/gitops/github/github-budget.ts';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { BackendRateLimitedError } from '../../src/gitops/repository.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { startGithubDouble } from '../support/github-double.ts';

/** A clock that runs `factor` times faster than the real one (and sleeps that much shorter). */
function compressedClock(factor: number): BudgetClock {
  const start = Date.now();
  return { now: () => start + (Date.now() - start) * factor, realMs: (ms) => ms / factor };
}

/** A clock that moves only when told. */
function manualClock(start = Date.UTC(2026, 11, 4)): BudgetClock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, realMs: () => 0, advance: (ms) => (now += ms) };
}

const headers = (values: Record<string, string>) => ({ get: (name: string) => values[name] ?? null });

describe('github write budget: GitHub rate limits spent so that no load earns a 403', function () {
  useSpecDatabase();
  let sequelize: Sequelize;
  let catalog: TemplateCatalog;
  let layout: Record<string, string>;
  before(async () => {
    sequelize = createTestSequelize();
    catalog = await loadTemplateCatalog();
    layout = Object.fromEntries((await readInitialLayout()).map((f) => [f.path, f.content]));
  });
  after(() => sequelize.close());

  const budget = (identity: string, clock: BudgetClock, maxWaitMs = 0) =>
    new GithubBudget({ sequelize, identity, writesPerHour: 450, burst: 30, primaryReserve: 500, clock, maxWaitMs });

  it('lets a burst through, then one write per refill; two replicas share one bucket', async () => {
    const clock = manualClock();
    const identity = `api.github.com/installation:${Math.random()}`;
    const [one, two] = [budget(identity, clock), budget(identity, clock)];
    for (let i = 0; i < 30; i += 1) await (i % 2 ? one : two).beforeRequest('POST', '/repos/{owner}/{repo}/git/trees');
    const refused = await two.beforeRequest('POST', '/repos/{owner}/{repo}/git/trees').catch((error: unknown) => error);
    assert.ok(refused instanceof BackendRateLimitedError, String(refused));
    // (450 − 30) an hour: one token every 3,600 / 420 s = 8.57 s.
    assert.equal(await one.readyIn(1), Math.ceil(3_600_000 / 420));
    assert.equal(await one.readyIn(5), Math.ceil((5 * 3_600_000) / 420));
    clock.advance(Math.ceil(3_600_000 / 420));
    await one.beforeRequest('PATCH', '/repos/{owner}/{repo}/git/refs/{ref}');
    await assert.rejects(two.beforeRequest('DELETE', '/repos/{owner}/{repo}/git/refs/{ref}'), BackendRateLimitedError);
    // Reads and GraphQL queries take no write token.
    await two.beforeRequest('GET', '/repos/{owner}/{repo}/pulls/{pull_number}');
    await two.beforeRequest('POST', '/graphql');
    assert.equal(one.writesLastHour() + two.writesLastHour(), 31);
    // An hour later the bucket is full again, and never holds more than the burst.
    clock.advance(3_600_000);
    assert.equal(await one.tokens(), 30);
  });

  it('waits for a token in place when the wait is short, and counts the wait', async () => {
    const clock = manualClock();
    const identity = `api.github.com/token:${Math.random()}`;
    const waiting = new GithubBudget({ sequelize, identity, writesPerHour: 450, burst: 30, primaryReserve: 500, clock: { now: clock.now, realMs: () => 1 }, maxWaitMs: 20_000 });
    let waited = 0;
    waiting.observe({ rateLimit: () => undefined, write: () => undefined, waited: (ms) => (waited += ms) });
    for (let i = 0; i < 30; i += 1) await waiting.beforeRequest('POST', '/x');
    // The clock moves while the budget sleeps (realMs 1): the second try finds the token.
    const pending = waiting.beforeRequest('POST', '/x');
    setTimeout(() => clock.advance(10_000), 0);
    await pending;
    assert.ok(waited >= 8_000, `waited ${waited} ms`);
  });

  it('sends nothing once the primary limit has no request left, and publishes no batch inside the reserve', async () => {
    const clock = manualClock();
    const limited = budget(`api.github.com/token:${Math.random()}`, clock);
    const resetAt = Math.ceil(clock.now() / 1000) + 600;
    limited.recordHeaders(headers({ 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '400', 'x-ratelimit-reset': String(resetAt), 'x-ratelimit-resource': 'core' }));
    assert.equal(await limited.readyIn(), resetAt * 1000 - clock.now(), 'within the reserve of 500: wait for the reset');
    await limited.beforeRequest('GET', '/repos/{owner}/{repo}/pulls/{pull_number}');
    limited.recordHeaders(headers({ 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(resetAt), 'x-ratelimit-resource': 'core' }));
    await assert.rejects(limited.beforeRequest('GET', '/repos/{owner}/{repo}/pulls/{pull_number}'), BackendRateLimitedError);
    // GraphQL has a limit of its own.
    await limited.beforeRequest('POST', '/graphql');
    clock.advance(600_000);
    assert.equal(await limited.readyIn(), 0);
    await limited.beforeRequest('GET', '/repos/{owner}/{repo}/pulls/{pull_number}');
  });

  /**
   * Changes arriving steadily for 40 simulated minutes (time runs 120 times faster for the
   * budget and the double alike; throttling's real-time one-second spacing is off, the budget
   * does the spacing) against the double enforcing GitHub's limits.
   */
  async function sustainedLoad(withBudget: boolean) {
    const factor = 120;
    const clock = compressedClock(factor);
    const double = await startGithubDouble({ initialFiles: layout, clock: clock.now });
    const identity = `api.github.com/token:${Math.random()}`;
    const gate = withBudget ? new GithubBudget({ sequelize, identity, writesPerHour: 450, burst: 30, primaryReserve: 500, clock }) : undefined;
    const octokit = await createGithubClient({ auth: { token: 'budget-spec' }, baseUrl: double.url, retries: 0, throttle: false, ...(gate ? { budget: gate } : {}) });
    const repository = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
    const org = await insertOrganization(sequelize);
    const worker = createChangeWorker({
      sequelize,
      repository,
      catalog,
      logger: createLogger('silent'),
      windowMs: 1_000,
      maxBatch: 500,
      leaseMs: 60_000,
      pollMs: 10,
      maxAttempts: 5,
      ...(gate ? { budget: gate } : {}),
    });
    const simulatedMinutes = 40;
    const perMinute = 30;
    const ids: string[] = [];
    worker.start();
    try {
      const started = clock.now();
      for (let i = 0; i < simulatedMinutes * perMinute; i += 1) {
        // Arrival i is due at i minutes / perMinute of the budget's clock.
        const due = started + (i * 60_000) / perMinute;
        if (clock.now() < due) await new Promise((resolve) => setTimeout(resolve, clock.realMs(due - clock.now())));
        const { instanceId, instanceName } = await insertInstance(sequelize, org);
        ids.push(await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) }));
      }
      // Then wait (at most 30 simulated minutes) for the queue to drain.
      const deadline = clock.now() + 30 * 60_000;
      const pending = async () =>
        Number(
          (await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM change_requests WHERE id IN (:ids) AND status = 'pending'`, { type: QueryTypes.SELECT, replacements: { ids } }))[0]!.n,
        );
      while ((await pending()) > 0 && clock.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      return { double, pending: await pending(), ids, pulls: double.pulls.length };
    } finally {
      await worker.stop();
      await double.close();
    }
  }

  it('1,200 changes over 40 simulated minutes: all in pull requests, not one request refused, within 80 writes a minute and 450 an hour', async function () {
    this.timeout(120_000);
    const { double, pending, ids, pulls } = await sustainedLoad(true);
    assert.deepEqual(double.limits!.refused, [], 'GitHub refused nothing');
    assert.deepEqual(double.limits!.violations, []);
    assert.deepEqual(double.violations, []);
    assert.equal(pending, 0, `all ${ids.length} changes left the queue`);
    const writes = double.limits!.writes;
    const most = (span: number) => Math.max(...writes.map((at) => writes.filter((w) => w >= at && w < at + span).length));
    assert.ok(most(60_000) <= 80, `at most 80 writes in any minute (${most(60_000)})`);
    assert.ok(most(3_600_000) <= 450, `at most 450 writes in any hour (${most(3_600_000)})`);
    // The batch grew with the queue: far fewer pull requests than changes.
    assert.ok(pulls < ids.length / 5, `${pulls} pull requests for ${ids.length} changes`);
    if (process.env.BUDGET_VERBOSE) console.log({ pulls, writes: writes.length, calls: double.calls.length, minute: most(60_000), hour: most(3_600_000) });
  });

  it('without the budget, the same load earns secondary rate limits (what the enforcing double catches)', async function () {
    this.timeout(120_000);
    const { double } = await sustainedLoad(false);
    assert.ok(double.limits!.refused.some((r) => r.kind === 'secondary'), `refused: ${double.limits!.refused.length}`);
  });
});
