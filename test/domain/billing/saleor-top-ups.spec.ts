import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { assessOrder, refundDue, type SaleorOrder } from '../../../src/domain/billing/saleor-order.ts';
import { applySaleorOrder } from '../../../src/domain/billing/saleor-top-ups.ts';
import { insertOrganization } from '../../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../../support/database.ts';

const PRODUCT = { sku: 'gsv-credit', minorPerUnit: 100n, currency: 'EUR' };
const money = (minor: number) => ({ currency: 'EUR', amount: minor / 100, fractionalAmount: minor, fractionDigits: 2 });

function order(input: { id: string; orgId?: string; units: number; charged: number; refunded?: number; otherMinor?: number }): SaleorOrder {
  const total = input.units * 100 + (input.otherMinor ?? 0);
  return {
    id: input.id,
    number: '1001',
    created: '2026-12-06T09:00:00+00:00',
    updatedAt: '2026-12-06T09:00:01+00:00',
    status: 'UNFULFILLED',
    chargeStatus: 'FULL',
    checkoutId: null,
    metadata: input.orgId ? [{ key: 'gsv.io/org-id', value: input.orgId }] : [],
    privateMetadata: [],
    total: { gross: money(total) },
    totalCharged: money(input.charged),
    totalRefunded: money(input.refunded ?? 0),
    lines: [
      { id: 'T3JkZXJMaW5lOjE=', productSku: 'gsv-credit', quantity: input.units, variant: { id: 'UHJvZHVjdFZhcmlhbnQ6Nw==', sku: 'gsv-credit' } },
      ...(input.otherMinor ? [{ id: 'T3JkZXJMaW5lOjI=', productSku: 'mug', quantity: 1, variant: null }] : []),
    ],
  };
}

describe('Saleor top-ups', () => {
  describe('assessOrder and refundDue (pure)', () => {
    it('credits the credit lines only, once the order has been fully charged (refunds count as charged before)', () => {
      assert.deepEqual(assessOrder(order({ id: 'a', units: 3, charged: 0 }), PRODUCT), { kind: 'not-paid', credit: 300n });
      assert.deepEqual(assessOrder(order({ id: 'a', units: 3, charged: 299 }), PRODUCT), { kind: 'not-paid', credit: 300n });
      assert.equal(assessOrder(order({ id: 'a', units: 3, charged: 300 }), PRODUCT).kind, 'credit');
      assert.equal(assessOrder(order({ id: 'a', units: 3, charged: 0, refunded: 300 }), PRODUCT).kind, 'credit', 'fully refunded: it was paid');
      const mixed = assessOrder(order({ id: 'a', units: 2, charged: 1200, otherMinor: 1000 }), PRODUCT);
      assert.ok(mixed.kind === 'credit' && mixed.credit === 200n && mixed.paid === 1200n);
      assert.deepEqual(assessOrder({ ...order({ id: 'a', units: 2, charged: 200 }), lines: [] }, PRODUCT), { kind: 'no-credit' });
    });

    it('private metadata names the org before public metadata', () => {
      const both = { ...order({ id: 'a', orgId: 'public', units: 1, charged: 100 }), privateMetadata: [{ key: 'gsv.io/org-id', value: 'private' }] };
      const assessed = assessOrder(both, PRODUCT);
      assert.ok(assessed.kind === 'credit' && assessed.orgReference === 'private');
    });

    it('a refund takes back its pro-rata share rounded down, everything when fully refunded', () => {
      assert.equal(refundDue(1000n, 1200n, 0n), 0n);
      assert.equal(refundDue(1000n, 1200n, 600n), 500n);
      assert.equal(refundDue(1000n, 3n, 1n), 333n);
      assert.equal(refundDue(1000n, 1200n, 1200n), 1000n);
      assert.equal(refundDue(1000n, 1200n, 5000n), 1000n);
    });
  });

  describe('applySaleorOrder', () => {
    useSpecDatabase();
    let sequelize: Sequelize;
    before(() => {
      sequelize = createTestSequelize(10);
    });
    after(() => sequelize.close());
    const deps = () => ({ sequelize, now: () => new Date() });

    async function balance(orgId: string): Promise<number> {
      const [row] = await sequelize.query<{ balance: string }>(`SELECT balance FROM ledger_accounts WHERE kind = 'wallet' AND organization_id = :orgId`, { type: QueryTypes.SELECT, replacements: { orgId } });
      return Number(row?.balance ?? 0);
    }

    it('a second caller that starts while the first has credited but not committed credits nothing', async () => {
      const { orgId } = await insertOrganization(sequelize);
      const paid = order({ id: `Order:${orgId}`, orgId, units: 9, charged: 900 });
      let firstApplied!: () => void;
      const applied = new Promise<void>((resolve) => (firstApplied = resolve));
      const first = sequelize.transaction(async (tx) => {
        const outcome = await applySaleorOrder(deps(), tx, { order: paid, product: PRODUCT, deliveryKey: 'first' });
        firstApplied();
        await new Promise((resolve) => setTimeout(resolve, 300));
        return outcome;
      });
      await applied;
      const second = sequelize.transaction((tx) => applySaleorOrder(deps(), tx, { order: paid, product: PRODUCT, deliveryKey: 'second' }));
      const outcomes = await Promise.all([first, second]);
      assert.deepEqual(outcomes.map((o) => o.result), ['credited', 'already-credited']);
      assert.equal(await balance(orgId), 900);
    });

    it('two refund states seen in either order take back the same total', async () => {
      const { orgId } = await insertOrganization(sequelize);
      const id = `Order:${orgId}`;
      await sequelize.transaction((tx) => applySaleorOrder(deps(), tx, { order: order({ id, orgId, units: 10, charged: 1000 }), product: PRODUCT }));
      // The later state (700 refunded) arrives before the earlier one (300 refunded).
      const later = await sequelize.transaction((tx) => applySaleorOrder(deps(), tx, { order: order({ id, orgId, units: 10, charged: 300, refunded: 700 }), product: PRODUCT }));
      const earlier = await sequelize.transaction((tx) => applySaleorOrder(deps(), tx, { order: order({ id, orgId, units: 10, charged: 700, refunded: 300 }), product: PRODUCT }));
      assert.deepEqual(later.refund, { due: 700, debited: 700, shortfall: 0 });
      assert.equal(earlier.refund, undefined);
      assert.equal(await balance(orgId), 300);
    });
  });
});
