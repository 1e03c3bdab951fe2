import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { landChange, publishAll, pullRequestOf, startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { testDatabaseUrl, useSpecDatabase } from '../support/database.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { instanceDir } from '../../src/gitops/tenant-paths.ts';
import type { RebuildReport } from '../../src/domain/rebuild/rebuild.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** `npm run rebuild -- …` as an operator runs it: its own process, the service's environment. */
function rebuild(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['src/cli/rebuild.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Issue 17 item 4, done when: wiping the instances and changes tables and running
 * `npm run rebuild` restores the same instances. The ledger is left as a backup would have it
 * (it is not in Git): the rebuild restores the instances it names, and reports the one it
 * cannot (a request that never reached main).
 */
describe('npm run rebuild: the service\'s view of tenants from the repository alone', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => (api = await startApiHarness()));
  after(() => api.close());

  const snapshot = async (ids: string[]) =>
    api.sequelize.query<Record<string, unknown>>(
      `SELECT i.id, o.slug AS org, p.slug AS project, i.name, f.slug AS offering, v.version, i.parameters, i.observed_state, i.desired_state, i.ever_present,
              i.state, i.created_by
         FROM instances i JOIN organizations o ON o.id = i.organization_id JOIN projects p ON p.id = i.project_id
         JOIN offering_versions v ON v.id = i.offering_version_id JOIN offerings f ON f.id = v.offering_id
        WHERE i.id = ANY($ids) ORDER BY i.id`,
      { type: QueryTypes.SELECT, bind: { ids } },
    );

  it('restores wiped instances (present and deleted) and their change history, and names the ledger row it cannot match', async function () {
    this.timeout(180_000); // three runs of the command, each its own process
    const alice = uniqueUser('alice', { username: 'Alice Admin' });
    const token = await api.tokenFor(alice);
    const org = (await api.call('POST', '/orgs/auto', { token })).body.slug as string;
    const [workspace] = await api.sequelize.query<{ id: string }>("SELECT c.id FROM change_requests c JOIN organizations o ON o.id = c.organization_id WHERE o.slug = $org AND c.kind = 'workspace.create'", { type: QueryTypes.SELECT, bind: { org } });
    await landChange(api, workspace!.id);
    const one = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'one', reason: 'first' } });
    await landChange(api, one.body.lastChangeId as string);
    const grown = await api.call('PATCH', `/instances/${String(one.body.id)}`, { token, body: { parameters: { size: 'large' }, reason: 'bigger' } });
    await landChange(api, grown.body.lastChangeId as string);
    const two = await api.call('POST', '/instances', { token, body: { org, offering: 'runtime', name: 'two' } });
    await landChange(api, two.body.lastChangeId as string);
    const gone = await api.call('DELETE', `/instances/${String(two.body.id)}?reason=done`, { token });
    await landChange(api, gone.body.lastChangeId as string);
    // Never on main: a reviewer closed its pull request.
    const three = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'three' } });
    await publishAll(api);
    await new LocalPullRequests({ sequelize: api.sequelize, repository: api.gitops.repository.gitDir }).setState(await pullRequestOf(api, three.body.lastChangeId as string), 'closed');
    // An engineer's edit of one's values: main holds it, the spec annotation is unchanged.
    const values = `${instanceDir(org, 'one', 'bucketed')}/values.yaml`;
    const head = (await api.gitops.repository.getBranch('main'))!;
    const current = (await api.gitops.repository.readDirectories(head, [instanceDir(org, 'one', 'bucketed')])).get(instanceDir(org, 'one', 'bucketed'))!.get(values)!;
    await api.gitops.commitAsPerson([{ path: values, content: `${current}# by hand\n` }], 'Tune one by hand');
    await api.gitops.converge();

    const ids = [String(one.body.id), String(two.body.id)];
    const before = await snapshot(ids);
    assert.equal(before.length, 2);
    const changesBefore = await api.sequelize.query<{ id: string; kind: string; requested_by: string; reason: string | null; instance_id: string | null }>(
      "SELECT id, kind, requested_by, reason, instance_id FROM change_requests WHERE status = 'merged' ORDER BY id",
      { type: QueryTypes.SELECT },
    );

    // The loss: every instance, event and change row gone, the ledger kept (as a restore from
    // an older backup leaves it). Foreign keys are held off for the wipe only.
    await api.sequelize.transaction(async (tx) => {
      await api.sequelize.query('SET LOCAL session_replication_role = replica', { transaction: tx });
      for (const table of ['instance_events', 'application_observations', 'unknown_tenant_paths', 'change_requests', 'instances', 'base_branch_heads']) await api.sequelize.query(`DELETE FROM ${table}`, { transaction: tx });
    });

    const env = { DATABASE_URL: testDatabaseUrl(), GITOPS_BASE_BRANCH: 'main' };
    const dry = await rebuild(['--repository', api.gitops.repository.gitDir, '--json'], env);
    assert.equal(dry.code, 2, dry.stderr);
    const report = JSON.parse(dry.stdout) as RebuildReport;
    const missing = report.findings.filter((f) => f.kind === 'instance-missing').map((f) => (f as { instanceId: string }).instanceId).sort();
    assert.deepEqual(missing, [...ids].sort());
    assert.equal(report.findings.filter((f) => f.kind === 'change-missing').length, changesBefore.length, JSON.stringify(report.findings));
    assert.equal((await api.sequelize.query('SELECT 1 FROM instances', { type: QueryTypes.SELECT })).length, 0, 'a dry run writes nothing');

    const applied = await rebuild(['--repository', api.gitops.repository.gitDir, '--apply'], env);
    // What is left: the hold of the request that never reached main, which Git cannot restore.
    assert.equal(applied.code, 2, applied.stderr);
    assert.match(applied.stdout, /applied: 2 instances, \d+ changes/);
    const left = applied.stdout.split('\n').filter((l) => l.startsWith('  - '));
    assert.equal(left.length, 1, applied.stdout);
    assert.match(left[0]!, new RegExp(`the ledger \\(billing_authorizations, 1 rows\\) names instance ${String(three.body.id)}`));

    assert.deepEqual(await snapshot(ids), before, 'the same instances: ids, names, projects, offering, version, parameters, present or absent, state');
    const changesAfter = await api.sequelize.query<{ id: string; kind: string; requested_by: string; reason: string | null; instance_id: string | null }>(
      "SELECT id, kind, requested_by, reason, instance_id FROM change_requests WHERE status = 'merged' ORDER BY id",
      { type: QueryTypes.SELECT },
    );
    assert.deepEqual(changesAfter, changesBefore, 'their change history: ids, kinds, requesters, reasons');
    const shown = await api.call('GET', `/instances/${String(one.body.id)}`, { token });
    assert.equal(shown.status, 200);
    assert.equal(shown.body.state, 'syncing', 'present on main, waiting for Argo CD to say it is healthy again');
    // Removed from main, and leaving until Argo CD says its Application is gone (the reconciler reads that next).
    assert.equal((await api.call('GET', `/instances/${String(two.body.id)}`, { token })).body.state, 'deleting');

    const again = await rebuild(['--repository', api.gitops.repository.gitDir, '--apply', '--json'], env);
    assert.equal((JSON.parse(again.stdout) as RebuildReport).applied?.instances, 0, 'idempotent');
  });
});
