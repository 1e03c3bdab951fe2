import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { AppError, AuthorizationResolvedError, PaymentRequiredError } from '../../../src/errors.ts';
import { authorize, expireAuthorizations, getAuthorization, settle, voidAuthorization } from '../../../src/domain/billing/authorizations.ts';
import { creditWallet, grantTrialCredit } from '../../../src/domain/billing/credits.ts';
import { ensureWallet, type LedgerDeps } from '../../../src/domain/billing/ledger.ts';
import { auditLedger, getWallet, listWalletEntries } from '../../../src/domain/billing/wallets.ts';
import { createTestSequelize, useSpecDatabase } from '../../support/database.ts';
import { createOrganization, inTransaction, ledgerDeps, testClock, type TestClock } from './billing-fixtures.ts';

const HOUR = 3_600_000;

describe('billing ledger', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let clock: TestClock;
  let deps: LedgerDeps;

  before(() => {
    sequelize = createTestSequelize(20);
  });
  after(async () => {
    await sequelize.close();
  });
  beforeEach(() => {
    clock = testClock();
    deps = ledgerDeps(sequelize, clock);
  });

  async function fundedWallet(amount: bigint, currency = 'EUR'): Promise<{ organizationId: string; walletId: string }> {
    const org = await createOrganization(sequelize);
    const walletId = await inTransaction(sequelize, (tx) => ensureWallet(deps, tx, org.id, currency));
    if (amount > 0n) await inTransaction(sequelize, (tx) => creditWallet(deps, tx, { walletId, amount, reason: 'test top-up', actor: 'test' }));
    return { organizationId: org.id, walletId };
  }

  const hold = (organizationId: string, amount: bigint, extra: { reference?: string; expiresInSeconds?: number } = {}) =>
    inTransaction(sequelize, (tx) =>
      authorize(deps, tx, { organizationId, currency: 'EUR', amount, expiresInSeconds: extra.expiresInSeconds ?? 3600, reference: extra.reference, actor: 'test' }),
    );

  async function assertLedgerConsistent(): Promise<void> {
    const audit = await auditLedger(deps);
    assert.equal(audit.total, 0n, 'all entries together sum to zero');
    assert.deepEqual(audit.discrepancies, [], 'every cached wallet balance equals the sum of its entries');
  }

  it('holds reduce available, settle captures into revenue and releases the rest', async () => {
    const { organizationId, walletId } = await fundedWallet(100n);
    const authorization = await hold(organizationId, 30n, { reference: 'instance-1' });
    assert.equal(authorization.status, 'pending');
    assert.equal(authorization.amount, 30n);
    assert.equal(authorization.walletId, walletId);
    assert.deepEqual(
      await getWallet(deps, undefined, walletId).then((w) => [w.balance, w.pending, w.available]),
      [100n, 30n, 70n],
    );

    const settled = await inTransaction(sequelize, (tx) => settle(deps, tx, { authorizationId: authorization.id, amount: 20n, actor: 'test' }));
    assert.equal(settled.status, 'settled');
    assert.equal(settled.capturedAmount, 20n);
    assert.deepEqual(
      await getWallet(deps, undefined, walletId).then((w) => [w.balance, w.pending, w.available]),
      [80n, 0n, 80n],
    );
    const page = await listWalletEntries(deps, undefined, walletId, { limit: 10 });
    assert.deepEqual(page.items.map((e) => [e.kind, e.amount]), [['capture', -20n], ['top-up', 100n]]);
    assert.equal(page.items[0]!.authorizationId, authorization.id);
    await assertLedgerConsistent();
  });

  it('refuses a hold the wallet cannot cover with 402 and changes nothing', async () => {
    const { organizationId, walletId } = await fundedWallet(50n);
    await hold(organizationId, 40n);
    await assert.rejects(hold(organizationId, 11n), (error: unknown) => {
      assert.ok(error instanceof PaymentRequiredError);
      assert.equal(error.status, 402);
      assert.equal(error.code, 'payment-required');
      assert.equal(error.extensions.available, 10);
      assert.equal(error.extensions.requested, 11);
      return true;
    });
    assert.equal((await getWallet(deps, undefined, walletId)).pending, 40n);
  });

  it('creates a missing wallet on demand, which then refuses any hold', async () => {
    const org = await createOrganization(sequelize);
    await assert.rejects(hold(org.id, 1n), PaymentRequiredError);
  });

  it('100 concurrent holds of 10 on a wallet of 100: exactly 10 succeed and available never goes below 0', async () => {
    const { organizationId, walletId } = await fundedWallet(100n);
    const samples: bigint[] = [];
    let racing = true;
    const sampler = (async () => {
      while (racing) {
        samples.push((await getWallet(deps, undefined, walletId)).available);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    // Hold the first 15 transactions open until all have begun, so their holds really collide.
    let begun = 0;
    let release!: () => void;
    const barrier = new Promise<void>((resolve) => (release = resolve));
    const attempt = () =>
      inTransaction(sequelize, async (tx) => {
        await sequelize.query('SELECT 1', { transaction: tx });
        if (++begun >= 15) release();
        await barrier;
        return authorize(deps, tx, { organizationId, currency: 'EUR', amount: 10n, expiresInSeconds: 3600, actor: 'test' });
      });
    const results = await Promise.allSettled(Array.from({ length: 100 }, attempt));
    racing = false;
    await sampler;

    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    assert.equal(won.length, 10);
    for (const r of lost) assert.ok(r.reason instanceof PaymentRequiredError, String(r.reason));
    assert.ok(samples.length > 0);
    assert.ok(samples.every((available) => available >= 0n), `available went negative: ${samples.filter((s) => s < 0n).join(', ')}`);
    const wallet = await getWallet(deps, undefined, walletId);
    assert.deepEqual([wallet.balance, wallet.pending, wallet.available], [100n, 100n, 0n]);
  });

  it('a hold resolves once: settle/settle, settle/void and void/settle raced 100 times', async () => {
    const { organizationId, walletId } = await fundedWallet(1000n);
    const settleOp = (id: string) => inTransaction(sequelize, (tx) => settle(deps, tx, { authorizationId: id, amount: 5n, actor: 'test' }));
    const voidOp = (id: string) => inTransaction(sequelize, (tx) => voidAuthorization(deps, tx, { authorizationId: id }));
    const pairs = [
      ['settle', 'settle'],
      ['settle', 'void'],
      ['void', 'settle'],
    ] as const;
    let captured = 0n;
    for (let i = 0; i < 100; i++) {
      const pair = pairs[i % pairs.length]!;
      const { id } = await hold(organizationId, 10n);
      const results = await Promise.allSettled(pair.map((op) => (op === 'settle' ? settleOp(id) : voidOp(id))));
      const winners = results.flatMap((r, k) => (r.status === 'fulfilled' ? [pair[k]!] : []));
      assert.equal(winners.length, 1, `race ${i} (${pair.join('/')}) had ${winners.length} winners`);
      const loser = results.find((r) => r.status === 'rejected')!;
      assert.ok(loser.reason instanceof AuthorizationResolvedError, String(loser.reason));
      const expectedCode = winners[0] === 'settle' ? 'authorization-already-settled' : 'authorization-already-voided';
      assert.equal(loser.reason.code, expectedCode);
      assert.equal(loser.reason.status, 409);
      if (winners[0] === 'settle') captured += 5n;
    }
    const wallet = await getWallet(deps, undefined, walletId);
    assert.deepEqual([wallet.balance, wallet.pending], [1000n - captured, 0n]);
    await assertLedgerConsistent();
  });

  it('refuses over-capture with 422 and leaves the hold and ledger as they were', async () => {
    const { organizationId, walletId } = await fundedWallet(100n);
    const { id } = await hold(organizationId, 30n);
    await assert.rejects(
      inTransaction(sequelize, (tx) => settle(deps, tx, { authorizationId: id, amount: 31n, actor: 'test' })),
      (error: unknown) => error instanceof AppError && error.status === 422 && error.code === 'capture-exceeds-authorization',
    );
    assert.equal((await getAuthorization(deps, undefined, id)).status, 'pending');
    assert.deepEqual(
      await getWallet(deps, undefined, walletId).then((w) => [w.balance, w.pending]),
      [100n, 30n],
    );
    // Without an amount, settle captures the whole hold.
    const settled = await inTransaction(sequelize, (tx) => settle(deps, tx, { authorizationId: id, actor: 'test' }));
    assert.equal(settled.capturedAmount, 30n);
  });

  it('an expired hold is released and cannot be settled, even before the sweeper marks it', async () => {
    const { organizationId, walletId } = await fundedWallet(100n);
    const { id } = await hold(organizationId, 60n, { expiresInSeconds: 60 });
    await assert.rejects(hold(organizationId, 60n), PaymentRequiredError);

    clock.advance(60_000);
    assert.equal((await getAuthorization(deps, undefined, id)).status, 'expired');
    assert.equal((await getWallet(deps, undefined, walletId)).available, 100n);
    for (const attempt of [
      () => inTransaction(sequelize, (tx) => settle(deps, tx, { authorizationId: id, actor: 'test' })),
      () => inTransaction(sequelize, (tx) => voidAuthorization(deps, tx, { authorizationId: id })),
    ]) {
      await assert.rejects(attempt(), (error: unknown) => error instanceof AuthorizationResolvedError && error.code === 'authorization-expired');
    }
    await hold(organizationId, 60n);

    const expired = await inTransaction(sequelize, (tx) => expireAuthorizations(deps, tx));
    assert.ok(expired.includes(id));
    assert.equal((await getAuthorization(deps, undefined, id)).status, 'expired');
    assert.equal((await getWallet(deps, undefined, walletId)).balance, 100n);
  });

  it('names an unknown authorization or wallet with 404', async () => {
    for (const attempt of [
      () => inTransaction(sequelize, (tx) => settle(deps, tx, { authorizationId: '00000000-0000-4000-8000-000000000000', actor: 'test' })),
      () => inTransaction(sequelize, (tx) => voidAuthorization(deps, tx, { authorizationId: 'not-a-uuid' })),
      () => getWallet(deps, undefined, '00000000-0000-4000-8000-000000000000'),
    ]) {
      await assert.rejects(attempt(), (error: unknown) => error instanceof AppError && error.status === 404);
    }
  });

  it('grants the trial credit once per wallet', async () => {
    const org = await createOrganization(sequelize);
    const first = await inTransaction(sequelize, (tx) => grantTrialCredit(deps, tx, { organizationId: org.id, currency: 'EUR', amount: 500n, actor: 'test' }));
    const second = await inTransaction(sequelize, (tx) => grantTrialCredit(deps, tx, { organizationId: org.id, currency: 'EUR', amount: 500n, actor: 'test' }));
    assert.ok(first.transferId);
    assert.equal(second.transferId, undefined);
    assert.equal(second.walletId, first.walletId);
    assert.equal((await getWallet(deps, undefined, first.walletId)).balance, 500n);
    await assertLedgerConsistent();
  });

  it('pages entries newest first with a cursor', async () => {
    const { walletId } = await fundedWallet(0n);
    for (let i = 1; i <= 5; i++) {
      await inTransaction(sequelize, (tx) => creditWallet(deps, tx, { walletId, amount: BigInt(i), reason: `top-up ${i}`, actor: 'test' }));
    }
    const first = await listWalletEntries(deps, undefined, walletId, { limit: 2 });
    const second = await listWalletEntries(deps, undefined, walletId, { limit: 2, cursor: first.nextCursor! });
    const third = await listWalletEntries(deps, undefined, walletId, { limit: 2, cursor: second.nextCursor! });
    assert.deepEqual([...first.items, ...second.items, ...third.items].map((e) => e.amount), [5n, 4n, 3n, 2n, 1n]);
    assert.equal(third.nextCursor, null);
  });

  it('keeps ledger entries and transfers append-only', async () => {
    const { walletId } = await fundedWallet(100n);
    for (const sql of [
      `UPDATE ledger_entries SET amount = amount + 1 WHERE account_id = '${walletId}'`,
      `DELETE FROM ledger_entries WHERE account_id = '${walletId}'`,
      `UPDATE ledger_transfers SET amount = 1 WHERE credit_account_id = '${walletId}'`,
      `DELETE FROM ledger_transfers WHERE credit_account_id = '${walletId}'`,
      `TRUNCATE ledger_entries CASCADE`,
      `TRUNCATE ledger_transfers CASCADE`,
    ]) {
      await assert.rejects(sequelize.query(sql), /append-only/, sql);
    }
    assert.equal((await listWalletEntries(deps, undefined, walletId, { limit: 10 })).items.length, 1);
  });

  it('refuses an unbalanced transfer at commit and a second resolution of a hold in the database itself', async () => {
    const { organizationId, walletId } = await fundedWallet(100n);
    await assert.rejects(
      inTransaction(sequelize, async (tx) => {
        const [row] = await sequelize.query<{ transfer_id: string }>(`SELECT transfer_id FROM ledger_entries WHERE account_id = :walletId`, {
          type: QueryTypes.SELECT,
          transaction: tx,
          replacements: { walletId },
        });
        await sequelize.query(`INSERT INTO ledger_entries (transfer_id, account_id, amount) VALUES (:transferId, :walletId, 1)`, {
          transaction: tx,
          replacements: { transferId: row!.transfer_id, walletId },
        });
      }),
      /does not balance/,
    );
    const { id } = await hold(organizationId, 10n);
    await inTransaction(sequelize, (tx) => voidAuthorization(deps, tx, { authorizationId: id }));
    await assert.rejects(sequelize.query(`UPDATE billing_authorizations SET status = 'settled', captured_amount = 10 WHERE id = '${id}'`), /already voided/);
    await assertLedgerConsistent();
  });

  it('stops counting holds against the wallet once they expire, as the clock moves', async () => {
    const { organizationId, walletId } = await fundedWallet(24n);
    for (let h = 0; h < 24; h++) {
      await hold(organizationId, 1n, { expiresInSeconds: 1800 });
      clock.advance(HOUR);
    }
    // Every hold expired half an hour after it was placed: nothing is pending any more.
    const wallet = await getWallet(deps, undefined, walletId);
    assert.deepEqual([wallet.balance, wallet.pending, wallet.available], [24n, 0n, 24n]);
  });
});
