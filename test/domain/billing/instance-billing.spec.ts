import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { PaymentRequiredError } from '../../../src/errors.ts';
import { authorize } from '../../../src/domain/billing/authorizations.ts';
import { creditWallet } from '../../../src/domain/billing/credits.ts';
import type { BillingSettings } from '../../../src/domain/billing/instance-billing.ts';
import { auditLedger, getWallet, listWalletEntries } from '../../../src/domain/billing/wallets.ts';
import type { InstanceEventType } from '../../../src/domain/instance-state.ts';
import { moveByFacts } from '../../support/instance-facts.ts';
import { createInstance, deleteInstance, updateInstance, type InstanceDeps } from '../../../src/domain/instances.ts';
import { ParametersValidator } from '../../../src/domain/parameters-schema.ts';
import type { Principal } from '../../../src/domain/principal.ts';
import { ensureAutoWorkspace, type WorkspaceDeps } from '../../../src/domain/workspaces.ts';
import { createTestSequelize, useSpecDatabase } from '../../support/database.ts';
import { pricedOfferingVersion } from './billing-fixtures.ts';

describe('billing through the instance lifecycle', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let workspaceDeps: WorkspaceDeps;
  let instanceDeps: InstanceDeps;
  const billing: BillingSettings = { trialCurrency: 'EUR', trialCreditMinor: 1500, holdTtlSeconds: 3600 };
  const ledger = () => ({ sequelize, now: () => new Date() });

  before(() => {
    sequelize = createTestSequelize(6);
    workspaceDeps = { sequelize, mergePolicy: 'pull-request', billing, mirrorToKeycloak: false };
    instanceDeps = { sequelize, mergePolicy: 'pull-request', parameters: new ParametersValidator(), billing };
  });
  after(async () => {
    await sequelize.close();
  });

  async function workspace(): Promise<{ principal: Principal; slug: string; walletId: string }> {
    const principal: Principal = { subject: `user-${randomBytes(5).toString('hex')}`, platformAdmin: false, via: 'api-token' };
    const { workspace } = await sequelize.transaction((tx) => ensureAutoWorkspace(workspaceDeps, tx, principal));
    return { principal, slug: workspace.slug, walletId: workspace.wallets[0]!.id };
  }

  async function versionWithFee(setupFee: number): Promise<string> {
    const id = await pricedOfferingVersion(sequelize, { setupFee, hourlyRate: 1 });
    const [row] = await sequelize.query<{ version: string }>('SELECT version FROM offering_versions WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id } });
    return row!.version;
  }

  const order = (principal: Principal, org: string, version: string) =>
    sequelize.transaction((tx) => createInstance(instanceDeps, tx, principal, { org, offering: 'billed', version, name: `i-${randomBytes(4).toString('hex')}` }));

  const move = (instanceId: string, event: InstanceEventType) => moveByFacts(sequelize, instanceId, event);

  async function versionId(version: string): Promise<string> {
    const [row] = await sequelize.query<{ id: string }>('SELECT id FROM offering_versions WHERE version = :version', { type: QueryTypes.SELECT, replacements: { version } });
    return row!.id;
  }

  /** The holds of an instance, oldest first, with the version each is for. */
  async function holdsOf(instanceId: string): Promise<{ status: string; amount: string; version: string }[]> {
    return sequelize.query<{ status: string; amount: string; version: string }>(
      `SELECT a.status, a.amount, v.version FROM billing_authorizations a JOIN offering_versions v ON v.id = a.offering_version_id
       WHERE a.reference = :instanceId ORDER BY a.created_at, a.id`,
      { type: QueryTypes.SELECT, replacements: { instanceId } },
    );
  }

  /** An instance main runs, ready, its setup fee captured. */
  async function running(principal: Principal, slug: string, version: string): Promise<string> {
    const instance = await order(principal, slug, version);
    await move(instance.id, 'change.opened');
    await move(instance.id, 'change.merged');
    await move(instance.id, 'sync.healthy');
    return instance.id;
  }

  /** The upgrade's pull request merged: convergence records the version main now holds, then Argo CD says Healthy. */
  async function mergeUpgrade(instanceId: string, version: string): Promise<void> {
    await move(instanceId, 'change.opened');
    await sequelize.query('UPDATE instances SET offering_version_id = :v WHERE id = :instanceId', { replacements: { v: await versionId(version), instanceId } });
    await move(instanceId, 'change.merged');
    await move(instanceId, 'sync.healthy');
  }

  const patch = (principal: Principal, instanceId: string, input: { version?: string; parameters?: Record<string, unknown> }) =>
    sequelize.transaction((tx) => updateInstance(instanceDeps, tx, principal, instanceId, input));

  async function holdOf(instanceId: string): Promise<{ status: string; captured_amount: string | null } | undefined> {
    const [row] = await sequelize.query<{ status: string; captured_amount: string | null }>(
      'SELECT status, captured_amount FROM billing_authorizations WHERE reference = :instanceId',
      { type: QueryTypes.SELECT, replacements: { instanceId } },
    );
    return row;
  }

  it('a new workspace gets its wallet and the trial credit once', async () => {
    const { principal, walletId } = await workspace();
    const again = await sequelize.transaction((tx) => ensureAutoWorkspace(workspaceDeps, tx, principal));
    assert.deepEqual(again.workspace.wallets.map((w) => w.id), [walletId]);
    const wallet = await getWallet(ledger(), undefined, walletId);
    assert.deepEqual([wallet.currency, wallet.balance], ['EUR', 1500n]);
  });

  it('POST /instances holds the setup fee, and 402 creates nothing when the wallet cannot cover it', async () => {
    const { principal, slug, walletId } = await workspace();
    const version = await versionWithFee(1000);
    const first = await order(principal, slug, version);
    assert.deepEqual(await holdOf(first.id), { status: 'pending', captured_amount: null });
    assert.equal((await getWallet(ledger(), undefined, walletId)).available, 500n);

    await assert.rejects(order(principal, slug, version), PaymentRequiredError);
    const [{ count: instances }] = (await sequelize.query(
      'SELECT count(*)::int AS count FROM instances i JOIN organizations o ON o.id = i.organization_id WHERE o.slug = :slug',
      { type: QueryTypes.SELECT, replacements: { slug } },
    )) as [{ count: number }];
    assert.equal(instances, 1);
    const [{ count: changes }] = (await sequelize.query(
      `SELECT count(*)::int AS count FROM change_requests c JOIN organizations o ON o.id = c.organization_id WHERE o.slug = :slug AND c.kind = 'instance.create'`,
      { type: QueryTypes.SELECT, replacements: { slug } },
    )) as [{ count: number }];
    assert.equal(changes, 1);
  });

  it('ready captures the setup fee into revenue', async () => {
    const { principal, slug, walletId } = await workspace();
    const instance = await order(principal, slug, await versionWithFee(1000));
    await move(instance.id, 'change.opened');
    await move(instance.id, 'change.merged');
    assert.equal((await holdOf(instance.id))?.status, 'pending');
    await move(instance.id, 'sync.healthy');
    assert.deepEqual(await holdOf(instance.id), { status: 'settled', captured_amount: '1000' });
    const wallet = await getWallet(ledger(), undefined, walletId);
    assert.deepEqual([wallet.balance, wallet.pending], [500n, 0n]);
    const audit = await auditLedger(ledger());
    assert.equal(audit.total, 0n);
  });

  it('rejected, failed and deleted-before-ready release the hold', async () => {
    const { principal, slug, walletId } = await workspace();
    await sequelize.transaction((tx) => creditWallet(ledger(), tx, { walletId, amount: 10_000n, reason: 'test', actor: 'test' }));
    const version = await versionWithFee(1000);

    const rejected = await order(principal, slug, version);
    await move(rejected.id, 'change.opened');
    await move(rejected.id, 'change.closed');
    assert.equal((await holdOf(rejected.id))?.status, 'voided');

    const failed = await order(principal, slug, version);
    await move(failed.id, 'change.failed');
    assert.equal((await holdOf(failed.id))?.status, 'voided');

    const deleted = await order(principal, slug, version);
    await sequelize.transaction((tx) => deleteInstance(instanceDeps, tx, principal, deleted.id));
    assert.equal((await holdOf(deleted.id))?.status, 'voided');

    const wallet = await getWallet(ledger(), undefined, walletId);
    assert.deepEqual([wallet.balance, wallet.pending], [11_500n, 0n]);
  });

  it("a captured setup fee's ledger entries name the instance", async () => {
    const { principal, slug, walletId } = await workspace();
    const id = await running(principal, slug, await versionWithFee(1000));
    const { items } = await listWalletEntries(ledger(), undefined, walletId, { limit: 10 });
    const capture = items.find((e) => e.kind === 'capture');
    assert.equal(capture?.instanceId, id);
  });

  it('an upgrade holds the new version’s setup fee and captures it when main runs it; parameters alone cost nothing', async () => {
    const { principal, slug, walletId } = await workspace();
    await sequelize.transaction((tx) => creditWallet(ledger(), tx, { walletId, amount: 10_000n, reason: 'test', actor: 'test' }));
    const v1 = await versionWithFee(1000);
    const v2 = await versionWithFee(700);
    const id = await running(principal, slug, v1);

    await patch(principal, id, { version: v2 });
    assert.deepEqual(await holdsOf(id), [{ status: 'settled', amount: '1000', version: v1 }, { status: 'pending', amount: '700', version: v2 }]);
    assert.equal((await getWallet(ledger(), undefined, walletId)).available, 11_500n - 1000n - 700n);
    await mergeUpgrade(id, v2);
    assert.deepEqual((await holdsOf(id)).map((h) => h.status), ['settled', 'settled']);
    const wallet = await getWallet(ledger(), undefined, walletId);
    assert.deepEqual([wallet.balance, wallet.pending], [11_500n - 1700n, 0n]);

    await patch(principal, id, { parameters: { note: 'x' } });
    assert.equal((await holdsOf(id)).length, 2, 'a change of parameters holds nothing');
    assert.equal((await auditLedger(ledger())).total, 0n);
  });

  it('an upgrade whose pull request is closed releases its fee; one the wallet cannot cover is refused with 402', async () => {
    const { principal, slug, walletId } = await workspace();
    const v1 = await versionWithFee(1000);
    const v2 = await versionWithFee(400);
    const expensive = await versionWithFee(600);
    const id = await running(principal, slug, v1);
    await patch(principal, id, { version: v2 });
    await move(id, 'change.opened');
    await move(id, 'change.closed');
    assert.deepEqual((await holdsOf(id)).map((h) => [h.version, h.status]), [[v1, 'settled'], [v2, 'voided']]);
    await assert.rejects(patch(principal, id, { version: expensive }), PaymentRequiredError);
    assert.equal((await holdsOf(id)).length, 2, 'the refused PATCH left nothing');
    assert.equal((await getWallet(ledger(), undefined, walletId)).available, 500n);
  });

  it('a setup fee whose hold lapsed before the instance became ready is still charged when it does (what main runs is paid for)', async () => {
    const { principal, slug, walletId } = await workspace();
    const instance = await mergedWithLapsedHold(principal, slug);
    assert.equal((await getWallet(ledger(), undefined, walletId)).available, 1500n);
    await move(instance.id, 'sync.healthy');
    const holds = await holdsOf(instance.id);
    assert.deepEqual(holds.map((h) => h.status), ['pending', 'settled'], 'the lapsed hold (swept later) and the fee placed again and captured');
    assert.deepEqual((await getWallet(ledger(), undefined, walletId)).balance, 500n);
  });

  it('a lapsed setup fee the wallet cannot pay at ready suspends the instance instead of leaving it unbilled', async () => {
    const { principal, slug, walletId } = await workspace();
    const instance = await mergedWithLapsedHold(principal, slug);
    // Another hold took what the lapsed one had promised.
    await sequelize.transaction((tx) => holdFor(tx, slug, 1000n));
    await move(instance.id, 'sync.healthy');
    const [row] = await sequelize.query<{ state: string }>('SELECT state FROM instances WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id: instance.id } });
    assert.equal(row!.state, 'suspended');
    assert.equal((await getWallet(ledger(), undefined, walletId)).balance, 1500n, 'nothing was charged that the wallet could not pay');
  });

  it('releases the fee of a merged create whose directory an engineer removed from main before it was ever ready', async () => {
    // The model suite found it: the merged create still "asked for" the version, so the hold stayed pending for ever.
    const { principal, slug, walletId } = await workspace();
    const instance = await order(principal, slug, await versionWithFee(1000));
    await move(instance.id, 'change.opened');
    await move(instance.id, 'change.merged');
    await sequelize.query(`UPDATE instances SET observed_state = 'absent', observed_at = now() WHERE id = :id`, { replacements: { id: instance.id } });
    await move(instance.id, 'main.observed');
    await move(instance.id, 'app.gone');
    const [row] = await sequelize.query<{ state: string }>('SELECT state FROM instances WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id: instance.id } });
    assert.equal(row!.state, 'deleted');
    assert.deepEqual((await holdsOf(instance.id)).map((h) => h.status), ['voided']);
    assert.equal((await getWallet(ledger(), undefined, walletId)).available, 1500n);
  });

  /** Merged, not ready yet, and its setup-fee hold lapsed meanwhile (the review took longer than its lifetime). */
  async function mergedWithLapsedHold(principal: Principal, slug: string): Promise<{ id: string }> {
    const instance = await order(principal, slug, await versionWithFee(1000));
    await move(instance.id, 'change.opened');
    await move(instance.id, 'change.merged');
    await sequelize.query(`UPDATE billing_authorizations SET expires_at = now() - interval '1 second', created_at = now() - interval '1 hour' WHERE reference = :id`, { replacements: { id: instance.id } });
    return instance;
  }

  async function holdFor(tx: Transaction, slug: string, amount: bigint): Promise<void> {
    const [org] = await sequelize.query<{ id: string }>('SELECT id FROM organizations WHERE slug = :slug', { type: QueryTypes.SELECT, replacements: { slug }, transaction: tx });
    await authorize(ledger(), tx, { organizationId: org!.id, currency: 'EUR', amount, expiresInSeconds: 3600, actor: 'someone' });
  }
});
