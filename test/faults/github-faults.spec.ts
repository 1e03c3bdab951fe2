import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';
import { createSequelize } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/logger.ts';
import { createScratchDatabase } from '../support/database.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { startGithubFaultProxy, type FaultProxy, type GithubFault } from './github-fault-proxy.ts';


/**
 * The github driver, through the change worker, against the GitHub double behind a proxy that
 * answers like GitHub on a bad day: every change still lands exactly once (one ref, one commit
 * on it, one pull request), and a secondary rate limit's retry-after is waited out.
 */
describe('GitHub misbehaving: 502, secondary rate limits, slow answers, lost answers', function () {
  this.timeout(180_000);
  let database: { url: string; drop(): Promise<void> };
  let sequelize: Sequelize;
  let catalog: TemplateCatalog;
  let layout: Record<string, string>;
  let double: GithubDouble;
  let proxy: FaultProxy;

  before(async () => {
    database = await createScratchDatabase('github_faults');
    const logger = createLogger('silent');
    sequelize = createSequelize({ url: database.url, poolMax: 5, logger });
    await migrate(database.url, sequelize, logger);
    catalog = await loadTemplateCatalog();
    layout = Object.fromEntries((await readInitialLayout()).map((f) => [f.path, f.content]));
  });
  after(async () => {
    await sequelize?.close();
    await database?.drop();
  });
  beforeEach(async () => {
    double = await startGithubDouble({ initialFiles: layout });
    proxy = await startGithubFaultProxy(double.url);
  });
  afterEach(async () => {
    await proxy.close();
    await double.close();
  });

  /** Three changes of one burst, published with `fault` injected; returns their rows. */
  async function publishWith(faults: [string, RegExp, GithubFault, number?][]) {
    for (const [method, pattern, fault, times] of faults) proxy.inject(method, pattern, fault, times);
    const octokit = await createGithubClient({ auth: { token: 'fault-token' }, baseUrl: proxy.url, retries: 3 });
    const repository = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
    const worker = createChangeWorker({ sequelize, repository, catalog, logger: createLogger('silent'), windowMs: 0, maxBatch: 50, leaseMs: 60_000, pollMs: 20, maxAttempts: 10 });
    const org = await insertOrganization(sequelize);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      ids.push(await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) }));
    }
    const deadline = Date.now() + 90_000;
    for (;;) {
      const rows = await sequelize.query<{ status: string; branch: string | null; commit_sha: string | null; pull_request_number: number | null; last_error: string | null }>(
        'SELECT status, branch, commit_sha, pull_request_number, last_error FROM change_requests WHERE id IN (:ids)',
        { type: QueryTypes.SELECT, replacements: { ids } },
      );
      if (rows.every((r) => r.status !== 'pending')) return rows;
      assert.ok(Date.now() < deadline, `changes still pending: ${JSON.stringify(rows)}`);
      if (!(await worker.runOnce())) {
        // Backing off after a transient error: let the retry come now rather than in minutes.
        await sequelize.query(`UPDATE change_requests SET next_attempt_at = now() WHERE id IN (:ids) AND status = 'pending'`, { replacements: { ids } });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  function assertLandedOnce(rows: { status: string; branch: string | null; commit_sha: string | null; pull_request_number: number | null }[]) {
    assert.deepEqual([...new Set(rows.map((r) => r.status))], ['open'], JSON.stringify(rows));
    const branches = new Set(rows.map((r) => r.branch));
    assert.equal(branches.size, 1, 'one batch, one branch');
    assert.equal(double.pulls.length, 1, `pull requests: ${JSON.stringify(double.pulls.map((p) => p.head))}`);
    assert.equal(double.pulls[0]!.head, rows[0]!.branch);
    assert.equal(double.branch(rows[0]!.branch!), rows[0]!.commit_sha, 'the branch points at the recorded commit');
    assert.equal(double.commit(rows[0]!.commit_sha!)!.parents[0], double.branch('main'), 'one commit on top of main');
    const files = [...double.files(rows[0]!.branch!).keys()].filter((f) => f.endsWith('/application.yaml'));
    assert.equal(files.length, 3);
    assert.deepEqual(double.violations, []);
  }

  it('retries 502 answers on every write and lands once', async () => {
    const rows = await publishWith([
      ['POST', /\/git\/trees$/, { kind: 'bad-gateway' }, 1],
      ['POST', /\/git\/commits$/, { kind: 'bad-gateway' }, 1],
      ['POST', /\/git\/refs$/, { kind: 'bad-gateway' }, 1],
      ['POST', /\/pulls$/, { kind: 'bad-gateway' }, 1],
    ]);
    assertLandedOnce(rows);
    assert.ok(proxy.calls.filter((c) => c.status === 502).length >= 4);
  });

  it('adopts the ref and the pull request when GitHub created them but the answer was lost ("already exists" on retry)', async () => {
    const rows = await publishWith([
      ['POST', /\/git\/refs$/, { kind: 'lost-response' }, 1],
      ['POST', /\/pulls$/, { kind: 'lost-response' }, 1],
    ]);
    assertLandedOnce(rows);
    assert.ok(proxy.calls.some((c) => c.path.endsWith('/git/refs') && c.status === 422), 'the retried ref create met "Reference already exists"');
    assert.ok(proxy.calls.some((c) => c.path.endsWith('/pulls') && c.method === 'POST' && c.status === 422), 'the retried PR create met "already exists"');
  });

  it('waits out a secondary rate limit for its retry-after before the next write', async () => {
    const rows = await publishWith([['POST', /\/git\/commits$/, { kind: 'secondary-rate-limit', retryAfterSeconds: 2 }, 1]]);
    assertLandedOnce(rows);
    const limited = proxy.calls.findIndex((c) => c.status === 403);
    assert.ok(limited >= 0, 'the rate limit was hit');
    const next = proxy.calls.slice(limited + 1).find((c) => c.method !== 'GET');
    assert.ok(next, 'a write followed the rate limit');
    const waited = next.at - proxy.calls[limited]!.at;
    assert.ok(waited >= 1_900, `the next write came ${waited} ms after a 403 with retry-after: 2`);
  });

  it('lands once when GitHub answers slowly', async () => {
    const rows = await publishWith([
      ['POST', /\/git\/trees$/, { kind: 'slow', delayMs: 1_500 }, 1],
      ['POST', /\/pulls$/, { kind: 'slow', delayMs: 1_500 }, 1],
    ]);
    assertLandedOnce(rows);
  });
});
