import { instanceDir, tenantDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import { QueryTypes } from 'sequelize';
import { startApiHarness, userWithWorkspace, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

interface Preview {
  dryRun: true;
  result: { id: string; state: string; lastChangeId: string | null };
  change: { kind: string; mergePolicy: string; baseCommit: string | null; files: { path: string; action: string; diff: string }[] } | null;
  replaces: { changeId: string; as: string }[];
  price: { currency: string; setupFeeHold: number; hourlyRate: number } | null;
  note: string | null;
}

/**
 * `?dryRun=true` (issue 20) through the HTTP API, on real PostgreSQL and a real bare repository:
 * the request is validated and run exactly as the real one, nothing is written, and the answer
 * says what the change would do to main. Every answer is checked against the OpenAPI document.
 */
describe('dry runs of instance requests', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let token: string;
  let org: string;
  let orgId: string;

  before(async () => {
    api = await startApiHarness();
    ({ token, org, orgId } = await userWithWorkspace(api, 'dry'));
    while (await api.gitops.worker().runOnce()); // the workspace's change, merged: main holds the tenant
    await mergeOpen();
  });
  after(() => api.close());

  /** Everything the org has written: a dry run must not move any of it. */
  const written = async () =>
    (
      await api.sequelize.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM instances WHERE organization_id = $org) || '/' || (SELECT count(*) FROM change_requests WHERE organization_id = $org)
           || '/' || (SELECT count(*) FROM billing_authorizations a JOIN ledger_accounts w ON w.id = a.wallet_id WHERE w.organization_id = $org)
           || '/' || (SELECT count(*) FROM instance_events e JOIN instances i ON i.id = e.instance_id WHERE i.organization_id = $org)
           || '/' || (SELECT coalesce(max(updated_at)::text, '') FROM instances WHERE organization_id = $org) AS n`,
        { type: QueryTypes.SELECT, bind: { org: orgId } },
      )
    )[0]!.n;

  /** A reviewer merges every open pull request, and main is read back. */
  async function mergeOpen(): Promise<void> {
    const open = await api.sequelize.query<{ n: number }>("SELECT DISTINCT pull_request_number AS n FROM change_requests WHERE status = 'open' AND organization_id = $org", {
      type: QueryTypes.SELECT,
      bind: { org: orgId },
    });
    for (const { n } of open) await api.gitops.repository.mergePullRequest(n);
    await api.gitops.converge();
  }

  it('POST: 200 with every file the create would write under tenants/<org>/, the merge policy and the hold; nothing written, the name still free', async () => {
    const before = await written();
    const preview = await api.call('POST', '/instances?dryRun=true', { token, body: { org, offering: 'studio', name: 'dry-one' } });
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    const body = preview.body as unknown as Preview;
    assert.equal(body.dryRun, true);
    assert.equal(body.result.state, 'requested');
    assert.equal(body.change!.kind, 'instance.create');
    assert.equal(body.change!.mergePolicy, 'pull-request');
    assert.match(String(body.change!.baseCommit), /^[0-9a-f]{40}$/);
    assert.ok(body.change!.files.length >= 2, JSON.stringify(body.change!.files.map((f) => f.path)));
    for (const file of body.change!.files) {
      assert.ok(file.path.startsWith(`${tenantDir(org, 'bucketed')}/`), file.path);
      assert.equal(file.action, 'write');
      assert.match(file.diff, new RegExp(`^--- /dev/null\\n\\+\\+\\+ b/${file.path.replaceAll('.', '\\.')}\\n@@ -0,0 \\+1,\\d+ @@\\n\\+`));
    }
    assert.ok(body.change!.files.some((f) => f.path === `${instanceDir(org, 'dry-one', 'bucketed')}/application.yaml` && f.diff.includes(`+  name: app--${org}--dry-one`)));
    const [studio] = await api.sequelize.query<{ fee: string; rate: string }>(
      "SELECT v.setup_fee_minor::text AS fee, v.hourly_rate_minor::text AS rate FROM offering_versions v JOIN offerings o ON o.id = v.offering_id WHERE o.slug = 'studio' AND v.version = '2.0.0'",
      { type: QueryTypes.SELECT },
    );
    assert.deepEqual(body.price, { currency: 'EUR', setupFeeHold: Number(studio!.fee), hourlyRate: Number(studio!.rate) });
    assert.equal(await written(), before, 'no instance, no change, no hold, no event');
    const real = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'dry-one' } });
    assert.equal(real.status, 202, 'the dry run did not take the name');
  });

  it('refuses what the real request refuses, with the same problem, and writes nothing', async () => {
    const before = await written();
    const bad = { org, offering: 'studio', name: 'dry-bad', parameters: { size: 'enormous' } };
    const dry = await api.call('POST', '/instances?dryRun=true', { token, body: bad });
    const real = await api.call('POST', '/instances', { token, body: bad });
    assert.ok(dry.status >= 400 && dry.status < 500, String(dry.status));
    assert.deepEqual([dry.status, dry.body.code, dry.body.errors], [real.status, real.body.code, real.body.errors]);
    const taken = await api.call('POST', '/instances?dryRun=true', { token, body: { org, offering: 'studio', name: 'dry-one' } });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.code, 'instance-name-taken');
    assert.equal((await api.call('POST', '/instances?dryRun=maybe', { token, body: { org, offering: 'studio', name: 'dry-x' } })).status, 400);
    assert.equal(await written(), before);
  });

  it('PATCH of an instance main holds: a diff of the lines that change; DELETE: every file removed; neither writes anything', async () => {
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'dry-two' } });
    const id = created.body.id as string;
    while (await api.gitops.worker().runOnce());
    await mergeOpen();
    const before = await written();
    const patch = await api.call('PATCH', `/instances/${id}?dryRun=true`, { token, body: { parameters: { size: 'large' } } });
    assert.equal(patch.status, 200, JSON.stringify(patch.body));
    const update = patch.body as unknown as Preview;
    assert.equal(update.change!.kind, 'instance.update');
    assert.ok(update.change!.files.length >= 1);
    for (const file of update.change!.files) {
      assert.equal(file.action, 'write');
      assert.match(file.diff, new RegExp(`^--- a/${file.path.replaceAll('.', '\\.')}\\n\\+\\+\\+ b/`));
      assert.match(file.diff, /^-.*small/m, file.diff);
      assert.match(file.diff, /^\+.*large/m, file.diff);
    }
    const removal = await api.call('DELETE', `/instances/${id}?dryRun=true`, { token });
    assert.equal(removal.status, 200, JSON.stringify(removal.body));
    const del = removal.body as unknown as Preview;
    assert.equal(del.change!.kind, 'instance.delete');
    assert.ok(del.change!.files.length >= 2);
    assert.ok(del.change!.files.every((f) => f.action === 'delete' && f.path.startsWith(`${instanceDir(org, 'dry-two', 'bucketed')}/`) && /^--- a\/.*\n\+\+\+ \/dev\/null\n/.test(f.diff)));
    assert.equal(await written(), before);
    assert.equal((await api.call('GET', `/instances/${id}`, { token })).body.state, 'syncing');
  });

  it('DELETE of an instance main never held: no Git change, the change it would cancel; an Idempotency-Key is not spent on a dry run', async () => {
    const created = await api.call('POST', '/instances', { token, body: { org, offering: 'studio', name: 'dry-three' } });
    const id = created.body.id as string;
    const key = `dry-${crypto.randomUUID()}`;
    const before = await written();
    const dry = await api.call('DELETE', `/instances/${id}?dryRun=true`, { token, headers: { 'idempotency-key': key } });
    assert.equal(dry.status, 200);
    const body = dry.body as unknown as Preview;
    assert.equal(body.change, null);
    assert.equal(body.result.state, 'deleted');
    assert.deepEqual(body.replaces, [{ changeId: created.body.lastChangeId, as: 'cancelled' }]);
    assert.match(String(body.note), /No Git change/);
    assert.equal(await written(), before);
    const real = await api.call('DELETE', `/instances/${id}`, { token, headers: { 'idempotency-key': key } });
    assert.equal(real.status, 202, 'the key was not spent on the dry run');
    assert.equal(real.body.state, 'deleted');
  });
});
