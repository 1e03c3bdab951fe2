import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { QueryTypes, type Sequelize } from 'sequelize';
import { creditWallet } from '../../src/domain/billing/credits.ts';
import { ensureWallet } from '../../src/domain/billing/ledger.ts';
import { auditLedger, getWallet } from '../../src/domain/billing/wallets.ts';
import { createTestSequelize, testDatabaseUrl, useSpecDatabase } from '../support/database.ts';
import { createOrganization } from '../domain/billing/billing-fixtures.ts';

const WORKER = path.join(import.meta.dirname, 'billing-crash-worker.ts');
const KILLS = Number(process.env.FAULTS_BILLING_KILLS ?? 8);

/**
 * Processes that move money are killed with SIGKILL at random moments, mid-transaction or not.
 * Whatever was in flight must vanish whole: the ledger still balances, every wallet equals its
 * entries, and a hold is settled exactly when one capture of its captured amount exists.
 */
describe('billing survives SIGKILL at any moment', function () {
  useSpecDatabase();
  this.timeout(300_000);
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize(4);
  });
  after(async () => {
    await sequelize.close();
  });

  it(`keeps the ledger whole across ${KILLS} kills`, async () => {
    const deps = { sequelize, now: () => new Date() };
    const org = await createOrganization(sequelize);
    const walletId = await sequelize.transaction((tx) => ensureWallet(deps, tx, org.id, 'EUR'));
    await sequelize.transaction((tx) => creditWallet(deps, tx, { walletId, amount: 500n, reason: 'crash test', actor: 'test' }));

    for (let kill = 0; kill < KILLS; kill++) {
      const child = spawn(process.execPath, [WORKER, testDatabaseUrl(), org.id, walletId], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 700)));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    // PostgreSQL notices the dead clients and rolls their transactions back; wait until it has.
    for (let i = 0; i < 100; i++) {
      const [row] = await sequelize.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
        { type: QueryTypes.SELECT },
      );
      if (row!.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const audit = await auditLedger(deps);
    assert.equal(audit.total, 0n);
    assert.deepEqual(audit.discrepancies, []);
    const wallet = await getWallet(deps, undefined, walletId);
    assert.ok(wallet.available >= 0n);

    const holds = await sequelize.query<{ id: string; status: string; captured_amount: string | null; captures: number; captured: string | null }>(
      `SELECT a.id, a.status, a.captured_amount,
         (SELECT count(*)::int FROM ledger_transfers t WHERE t.authorization_id = a.id) AS captures,
         (SELECT sum(t.amount) FROM ledger_transfers t WHERE t.authorization_id = a.id) AS captured
       FROM billing_authorizations a WHERE a.wallet_id = :walletId`,
      { type: QueryTypes.SELECT, replacements: { walletId } },
    );
    assert.ok(holds.length > KILLS, `the workers placed only ${holds.length} holds`);
    for (const hold of holds) {
      if (hold.status === 'settled' && hold.captured_amount !== '0') {
        assert.deepEqual([hold.captures, hold.captured], [1, hold.captured_amount], `hold ${hold.id}`);
      } else {
        assert.equal(hold.captures, 0, `hold ${hold.id} is ${hold.status} but has a capture`);
      }
    }
  });
});
