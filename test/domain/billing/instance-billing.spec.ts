import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { PaymentRequiredError } from '../../../src/errors.ts';
import { creditWallet } from '../../../src/domain/billing/credits.ts';
import type { BillingSettings } from '../../../src/domain/billing/instance-billing.ts';
import { auditLedger, getWallet } from '../../../src/domain/billing/wallets.ts';
import type { InstanceEventType } from '../../../src/domain/instance-state.ts';
import { moveByFacts } from '../../support/instance-facts.ts';
import { createInstance, deleteInstance, type InstanceDeps } from '../../../src/domain/instances.ts';
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
});
