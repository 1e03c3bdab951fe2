import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { processDelivery } from '../../src/webhooks/webhook-deliveries.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';

/**
 * Found by the model-based suite (seed 20261128, 2,000-sequence run): a duplicated pull_request
 * delivery answered 500 because its transaction and another one (the withdrawal of superseded
 * changes) locked the same rows in opposite orders and PostgreSQL aborted it to break the
 * deadlock. GitHub does not redeliver by itself: the delivery must be run again, not failed.
 */
describe('webhook deliveries: a transaction PostgreSQL aborts to break a deadlock is run again', function () {
  useSpecDatabase();
  this.timeout(30_000);
  let sequelize: Sequelize;

  before(async () => {
    sequelize = createTestSequelize();
    await sequelize.query('CREATE TABLE deadlock_rows (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)');
    await sequelize.query('INSERT INTO deadlock_rows (id) VALUES (1), (2)');
  });
  after(async () => {
    await sequelize.close();
  });

  it('retries the delivery whose transaction lost a real deadlock, applies its effect once and marks it processed', async () => {
    let attempts = 0;
    let effectHoldsTwo!: () => void;
    const twoLocked = new Promise<void>((resolve) => (effectHoldsTwo = resolve));
    // The other transaction: holds row 1, and once the delivery holds row 2, asks for it. It waits
    // longer before checking for deadlocks, so PostgreSQL aborts the delivery's transaction.
    const other = sequelize.transaction(async (tx) => {
      await sequelize.query("SET LOCAL deadlock_timeout = '10s'", { transaction: tx });
      await sequelize.query('SELECT id FROM deadlock_rows WHERE id = 1 FOR UPDATE', { type: QueryTypes.SELECT, transaction: tx });
      await twoLocked;
      await sequelize.query('UPDATE deadlock_rows SET n = n + 1 WHERE id = 2', { transaction: tx });
    });
    const result = await processDelivery(sequelize, { source: 'github', key: `deadlock-${Date.now()}`, event: 'pull_request' }, async (tx) => {
      attempts += 1;
      await sequelize.query('UPDATE deadlock_rows SET n = n + 10 WHERE id = 2', { transaction: tx });
      if (attempts === 1) {
        effectHoldsTwo();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await sequelize.query('UPDATE deadlock_rows SET n = n + 10 WHERE id = 1', { transaction: tx });
      return { attempts };
    });
    await other;
    assert.equal(attempts, 2, 'aborted once by PostgreSQL, run again');
    assert.deepEqual(result, { duplicate: false, outcome: { attempts: 2 } });
    const rows = await sequelize.query<{ id: number; n: number }>('SELECT id, n FROM deadlock_rows ORDER BY id', { type: QueryTypes.SELECT });
    assert.deepEqual(rows, [{ id: 1, n: 10 }, { id: 2, n: 11 }], 'the aborted attempt left nothing; the retry and the other transaction each applied once');
    const [delivery] = await sequelize.query<{ processed: boolean; attempts: number }>(
      "SELECT processed_at IS NOT NULL AS processed, attempts FROM webhook_deliveries WHERE source = 'github' AND delivery_key LIKE 'deadlock-%'",
      { type: QueryTypes.SELECT },
    );
    assert.equal(delivery!.processed, true);
  });
});
