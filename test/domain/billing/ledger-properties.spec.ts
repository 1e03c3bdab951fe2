import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Sequelize } from 'sequelize';
import { AuthorizationResolvedError, PaymentRequiredError, UnprocessableError } from '../../../src/errors.ts';
import { authorize, expireAuthorizations, settle, voidAuthorization } from '../../../src/domain/billing/authorizations.ts';
import { creditWallet } from '../../../src/domain/billing/credits.ts';
import { ensureWallet } from '../../../src/domain/billing/ledger.ts';
import { auditLedger, getWallet } from '../../../src/domain/billing/wallets.ts';
import { createTestSequelize, useSpecDatabase } from '../../support/database.ts';
import { createOrganization, inTransaction, ledgerDeps, testClock } from './billing-fixtures.ts';

const WALLETS = 3;

type Op =
  | { op: 'credit'; wallet: number; amount: number }
  | { op: 'authorize'; wallet: number; amount: number; ttl: number }
  | { op: 'settle'; hold: number; amount: number | undefined }
  | { op: 'void'; hold: number }
  | { op: 'advance'; seconds: number }
  | { op: 'sweep' };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('credit' as const), wallet: fc.nat(WALLETS - 1), amount: fc.integer({ min: 1, max: 50 }) }), weight: 2 },
  {
    arbitrary: fc.record({ op: fc.constant('authorize' as const), wallet: fc.nat(WALLETS - 1), amount: fc.integer({ min: 1, max: 60 }), ttl: fc.integer({ min: 30, max: 600 }) }),
    weight: 4,
  },
  { arbitrary: fc.record({ op: fc.constant('settle' as const), hold: fc.nat(20), amount: fc.option(fc.integer({ min: 0, max: 70 }), { nil: undefined }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('void' as const), hold: fc.nat(20) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('advance' as const), seconds: fc.integer({ min: 0, max: 700 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('sweep' as const) }), weight: 1 },
);

/** What the ledger should say, computed without a database. */
interface ModelHold {
  id: string;
  wallet: number;
  amount: bigint;
  expiresAt: number;
  status: 'pending' | 'settled' | 'voided';
}

describe('billing ledger properties', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize(4);
  });
  after(async () => {
    await sequelize.close();
  });

  it('random authorize/settle/void/expire/credit sequences keep money constant and every wallet equal to its entries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 100 }), { minLength: WALLETS, maxLength: WALLETS }), fc.array(opArbitrary, { minLength: 5, maxLength: 25 }), async (opening, ops) => {
        const clock = testClock();
        const deps = ledgerDeps(sequelize, clock);
        const walletIds: string[] = [];
        for (let i = 0; i < WALLETS; i++) {
          const org = await createOrganization(sequelize);
          walletIds.push(await inTransaction(sequelize, (tx) => ensureWallet(deps, tx, org.id, 'EUR')));
        }
        const organizationOf = async (wallet: number) => (await getWallet(deps, undefined, walletIds[wallet]!)).organizationId;
        const balances: bigint[] = opening.map((amount) => BigInt(amount));
        for (let w = 0; w < WALLETS; w++) {
          if (opening[w]! > 0) await inTransaction(sequelize, (tx) => creditWallet(deps, tx, { walletId: walletIds[w]!, amount: BigInt(opening[w]!), reason: 'opening', actor: 'test' }));
        }
        const holds: ModelHold[] = [];
        const live = (h: ModelHold) => h.status === 'pending' && h.expiresAt > clock.now().getTime();
        const pendingOf = (wallet: number) => holds.filter((h) => h.wallet === wallet && live(h)).reduce((sum, h) => sum + h.amount, 0n);

        for (const op of ops) {
          switch (op.op) {
            case 'credit':
              await inTransaction(sequelize, (tx) => creditWallet(deps, tx, { walletId: walletIds[op.wallet]!, amount: BigInt(op.amount), reason: 'property', actor: 'test' }));
              balances[op.wallet]! += BigInt(op.amount);
              break;
            case 'authorize': {
              const amount = BigInt(op.amount);
              const organizationId = await organizationOf(op.wallet);
              const canPay = balances[op.wallet]! - pendingOf(op.wallet) >= amount;
              const attempt = inTransaction(sequelize, (tx) =>
                authorize(deps, tx, { organizationId, currency: 'EUR', amount, expiresInSeconds: op.ttl, actor: 'test' }),
              );
              if (canPay) {
                const { id } = await attempt;
                holds.push({ id, wallet: op.wallet, amount, expiresAt: clock.now().getTime() + op.ttl * 1000, status: 'pending' });
              } else {
                await assert.rejects(attempt, PaymentRequiredError);
              }
              break;
            }
            case 'settle':
            case 'void': {
              const hold = holds[op.hold % Math.max(holds.length, 1)];
              if (!hold) break;
              const capture = op.op === 'settle' ? (op.amount === undefined ? hold.amount : BigInt(op.amount)) : 0n;
              const attempt = inTransaction(sequelize, (tx) =>
                op.op === 'settle'
                  ? settle(deps, tx, { authorizationId: hold.id, amount: op.amount === undefined ? undefined : BigInt(op.amount), actor: 'test' })
                  : voidAuthorization(deps, tx, { authorizationId: hold.id }),
              );
              if (!live(hold)) {
                await assert.rejects(attempt, AuthorizationResolvedError);
              } else if (capture > hold.amount) {
                await assert.rejects(attempt, UnprocessableError);
              } else {
                await attempt;
                hold.status = op.op === 'settle' ? 'settled' : 'voided';
                balances[hold.wallet]! -= capture;
              }
              break;
            }
            case 'advance':
              clock.advance(op.seconds * 1000);
              break;
            case 'sweep':
              await inTransaction(sequelize, (tx) => expireAuthorizations(deps, tx));
              break;
          }

          const audit = await auditLedger(deps);
          assert.equal(audit.total, 0n, 'the sum of all accounts stays constant (zero)');
          assert.deepEqual(audit.discrepancies, []);
          for (let w = 0; w < WALLETS; w++) {
            const wallet = await getWallet(deps, undefined, walletIds[w]!);
            assert.equal(wallet.balance, balances[w], `balance of wallet ${w} after ${op.op}`);
            assert.equal(wallet.pending, pendingOf(w), `pending of wallet ${w} after ${op.op}`);
            assert.ok(wallet.available >= 0n, `available of wallet ${w} is ${wallet.available}`);
          }
        }
      }),
      { numRuns: 20 },
    );
  });
});
