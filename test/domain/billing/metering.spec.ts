import assert from 'node:assert/strict';
import pg from 'pg';
import { QueryTypes, type Sequelize } from 'sequelize';
import { creditWallet } from '../../../src/domain/billing/credits.ts';
import { ensureWallet, type LedgerDeps } from '../../../src/domain/billing/ledger.ts';
import { meterUsage } from '../../../src/domain/billing/metering.ts';
import { auditLedger, getWallet } from '../../../src/domain/billing/wallets.ts';
import { createMeteringTask, METERING_LOCK_KEY, runMetering } from '../../../src/jobs/metering-task.ts';
import { createLogger } from '../../../src/logger.ts';
import { createMetrics } from '../../../src/metrics.ts';
import { createTestSequelize, testDatabaseUrl, useSpecDatabase } from '../../support/database.ts';
import { createOrganization, inTransaction, ledgerDeps, pricedOfferingVersion, readyInstance, testClock, type TestClock } from './billing-fixtures.ts';

describe('metering', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let clock: TestClock;
  let deps: LedgerDeps;

  before(() => {
    sequelize = createTestSequelize(6);
  });
  after(async () => {
    await sequelize.close();
  });
  beforeEach(() => {
    // A clock of its own per test.
    clock = testClock('2025-03-01T10:00:00Z');
    deps = ledgerDeps(sequelize, clock);
  });

  async function setup(credit: bigint, hourlyRate: number): Promise<{ instanceId: string; walletId: string }> {
    const org = await createOrganization(sequelize);
    const walletId = await inTransaction(sequelize, (tx) => ensureWallet(deps, tx, org.id, 'EUR'));
    if (credit > 0n) await inTransaction(sequelize, (tx) => creditWallet(deps, tx, { walletId, amount: credit, reason: 'test', actor: 'test' }));
    const version = await pricedOfferingVersion(sequelize, { hourlyRate });
    const instanceId = await readyInstance(sequelize, org.id, version, clock.now());
    return { instanceId, walletId };
  }

  async function meteredHours(instanceId: string): Promise<string[]> {
    const rows = await sequelize.query<{ hour: Date }>(`SELECT hour FROM metered_hours WHERE instance_id = :instanceId ORDER BY hour`, {
      type: QueryTypes.SELECT,
      replacements: { instanceId },
    });
    return rows.map((r) => r.hour.toISOString().slice(11, 16));
  }

  const balanceOf = async (walletId: string) => (await getWallet(deps, undefined, walletId)).balance;

  it('charges nothing before the first hour ends, then each full hour once however often it runs', async () => {
    const { instanceId, walletId } = await setup(1000n, 7);
    clock.set('2025-03-01T10:59:59Z');
    await meterUsage(deps);
    assert.deepEqual(await meteredHours(instanceId), []);

    clock.set('2025-03-01T11:00:00Z');
    await meterUsage(deps);
    await meterUsage(deps);
    clock.set('2025-03-01T11:45:00Z');
    await meterUsage(deps);
    assert.deepEqual(await meteredHours(instanceId), ['10:00']);
    assert.equal(await balanceOf(walletId), 993n);
  });

  it('catches up exactly the 5 hours missed during an outage', async () => {
    const { instanceId, walletId } = await setup(1000n, 10);
    clock.set('2025-03-01T11:05:00Z');
    await meterUsage(deps);
    assert.deepEqual(await meteredHours(instanceId), ['10:00']);

    clock.set('2025-03-01T16:20:00Z'); // down from 11:05 to 16:20
    await meterUsage(deps);
    assert.deepEqual(await meteredHours(instanceId), ['10:00', '11:00', '12:00', '13:00', '14:00', '15:00']);
    assert.equal(await balanceOf(walletId), 1000n - 6n * 10n);
    const usage = await sequelize.query<{ amount: string; reason: string }>(
      `SELECT e.amount, t.reason FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id
       WHERE e.account_id = :walletId AND t.kind = 'usage' AND t.instance_id = :instanceId ORDER BY t.reason`,
      { type: QueryTypes.SELECT, replacements: { walletId, instanceId } },
    );
    assert.deepEqual(usage.map((u) => [u.amount, u.reason]), ['10', '11', '12', '13', '14', '15'].map((h) => ['-10', `usage 2025-03-01T${h}:00Z`]));
    const audit = await auditLedger(deps);
    assert.equal(audit.total, 0n);
    assert.deepEqual(audit.discrepancies, []);
  });

  it('charges an hour once when two replicas run metering at the same time', async () => {
    const { instanceId, walletId } = await setup(1000n, 10);
    clock.set('2025-03-01T13:00:00Z');
    const other = createTestSequelize(3);
    try {
      await Promise.all([meterUsage(deps), meterUsage(ledgerDeps(other, clock)), meterUsage(deps)]);
    } finally {
      await other.close();
    }
    assert.deepEqual(await meteredHours(instanceId), ['10:00', '11:00', '12:00']);
    assert.equal(await balanceOf(walletId), 970n);
  });

  it('suspends the instance when its wallet cannot pay an hour, and deletes nothing', async () => {
    const { instanceId, walletId } = await setup(25n, 10);
    clock.set('2025-03-01T14:00:00Z');
    const result = await meterUsage(deps);
    assert.ok(result.suspended.includes(instanceId));
    assert.deepEqual(await meteredHours(instanceId), ['10:00', '11:00']);
    assert.equal(await balanceOf(walletId), 5n);
    const [instance] = await sequelize.query<{ state: string; last_error: string }>(`SELECT state, last_error FROM instances WHERE id = :instanceId`, {
      type: QueryTypes.SELECT,
      replacements: { instanceId },
    });
    assert.equal(instance!.state, 'suspended');
    assert.match(instance!.last_error, /cannot pay/);
    const events = await sequelize.query<{ from_state: string; to_state: string; cause: string }>(
      `SELECT from_state, to_state, cause FROM instance_events WHERE instance_id = :instanceId ORDER BY id`,
      { type: QueryTypes.SELECT, replacements: { instanceId } },
    );
    assert.deepEqual(events.at(-1), { from_state: 'ready', to_state: 'suspended', cause: 'wallet.exhausted' });

    // Suspended instances are not metered any more.
    clock.set('2025-03-01T20:00:00Z');
    await meterUsage(deps);
    assert.deepEqual(await meteredHours(instanceId), ['10:00', '11:00']);
  });

  it('records the hours of a free offering without moving money', async () => {
    const { instanceId, walletId } = await setup(0n, 0);
    clock.set('2025-03-01T12:30:00Z');
    await meterUsage(deps);
    assert.deepEqual(await meteredHours(instanceId), ['10:00', '11:00']);
    assert.equal(await balanceOf(walletId), 0n);
    const [{ count }] = (await sequelize.query(`SELECT count(*)::int AS count FROM ledger_transfers WHERE instance_id = :instanceId`, {
      type: QueryTypes.SELECT,
      replacements: { instanceId },
    })) as [{ count: number }];
    assert.equal(count, 0);
  });

  it('runs as a background task and counts its runs and charged hours', async () => {
    const { instanceId } = await setup(1000n, 10);
    clock.set('2025-03-01T13:00:00Z');
    const metrics = createMetrics({ collectDefaults: false });
    const task = createMeteringTask({ ...deps, logger: createLogger('silent'), metrics, intervalMs: 1 });
    task.start();
    try {
      while ((await meteredHours(instanceId)).length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      await task.stop();
    }
    const text = await metrics.registry.metrics();
    assert.match(text, /metering_runs_total\{role="leader"\} [1-9]/);
    assert.match(text, /metering_hours_charged_total [1-9]/);
  });

  it('only the replica holding the advisory lock meters', async () => {
    const { instanceId } = await setup(1000n, 10);
    clock.set('2025-03-01T12:00:00Z');
    const holder = new pg.Client({ connectionString: testDatabaseUrl() });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [METERING_LOCK_KEY]);
      assert.deepEqual(await runMetering(deps), { leader: false });
      assert.deepEqual(await meteredHours(instanceId), []);
      await holder.query('SELECT pg_advisory_unlock($1)', [METERING_LOCK_KEY]);
      const run = await runMetering(deps);
      assert.equal(run.leader, true);
      assert.deepEqual(await meteredHours(instanceId), ['10:00', '11:00']);
    } finally {
      await holder.end();
    }
  });
});
