import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createSaleorOrderReader, SaleorReadError } from '../../src/jobs/saleor-orders.ts';
import { reconcileSaleorOrders, reconcileWindow, runSaleorReconcile } from '../../src/jobs/saleor-reconciler.ts';
import { createMetrics } from '../../src/metrics.ts';
import { insertOrganization } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { startSaleorDouble, type SaleorDouble } from '../support/saleor-double.ts';
import { CREDIT_PRODUCT, startSaleorReceiver } from '../support/saleor-receiver.ts';


describe('Saleor reconciler', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let saleor: SaleorDouble;
  let server: Awaited<ReturnType<typeof startSaleorReceiver>>;
  let url: string;

  before(async () => {
    sequelize = createTestSequelize(10);
    // Two orders a page, so that every read here follows cursors.
    saleor = await startSaleorDouble({ pageSize: 2 });
    server = await startSaleorReceiver(sequelize, saleor.apiUrl);
    url = server.url;
  });
  after(async () => {
    await server.close();
    await saleor.close();
    await sequelize.close();
  });

  const balance = async (orgId: string) => {
    const [row] = await sequelize.query<{ balance: string }>(`SELECT balance FROM ledger_accounts WHERE kind = 'wallet' AND organization_id = :orgId`, { type: QueryTypes.SELECT, replacements: { orgId } });
    return Number(row?.balance ?? 0);
  };

  it('finds the paid order whose webhook was lost and credits it once; a missed refund too; the rest is reported', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const deps = { sequelize, now: () => new Date(), product: CREDIT_PRODUCT, orders: createSaleorOrderReader({ apiUrl: saleor.apiUrl, appToken: saleor.appToken }), metrics };
    const delivered = await insertOrganization(sequelize);
    const lost = await insertOrganization(sequelize);
    const refunded = await insertOrganization(sequelize);
    const a = saleor.pay(saleor.createOrder({ orgId: delivered.orgId, creditUnits: 3 }).id);
    assert.equal((await saleor.send(url, saleor.delivery('order_fully_paid', a.id))).status, 200);
    const b = saleor.pay(saleor.createOrder({ orgId: lost.orgId, creditUnits: 8 }).id); // its webhook never arrives
    const c = saleor.pay(saleor.createOrder({ orgId: refunded.orgId, creditUnits: 10 }).id);
    assert.equal((await saleor.send(url, saleor.delivery('order_fully_paid', c.id))).status, 200);
    saleor.refund(c.id, 400); // its ORDER_REFUNDED never arrives
    const d = saleor.pay(saleor.createOrder({ creditUnits: 2 }).id); // names no org
    saleor.createOrder({ orgId: lost.orgId, creditUnits: 50 }); // not paid: nothing to do
    saleor.pay(saleor.createOrder({ orgId: lost.orgId, creditUnits: 0, otherLine: { sku: 'mug', quantity: 1, unitPriceMinor: 900 } }).id);
    // A credit recorded for an order this Saleor does not know (validly signed, say a Saleor restored from a backup).
    const ghost = JSON.parse(saleor.delivery('order_fully_paid', a.id).body) as { order: { id: string; number: string } };
    ghost.order.id = Buffer.from(`Order:${randomUUID()}`).toString('base64');
    ghost.order.number = '99999';
    assert.equal((await saleor.send(url, saleor.signed('order_fully_paid', JSON.stringify(ghost)))).status, 200);
    assert.equal(await balance(lost.orgId), 0);

    const result = await reconcileSaleorOrders(deps);
    const kinds = result.mismatches.map((m) => `${m.kind}:${m.orderNumber}`).sort();
    assert.deepEqual(kinds, [`credit-without-paid-order:99999`, `missing-credit:${b.number}`, `missing-refund:${c.number}`, `unmatched:${d.number}`].sort());
    assert.equal(result.paidCreditOrders, 4);
    assert.equal(await balance(lost.orgId), 800);
    assert.equal(await balance(refunded.orgId), 600);
    assert.equal(await balance(delivered.orgId), 600, "order a's 300, and the ghost order's 300");
    assert.match(await metrics.registry.getSingleMetricAsString('saleor_reconcile_mismatches_total'), /kind="missing-credit"\} 1/);
    assert.match(await metrics.registry.getSingleMetricAsString('saleor_orders_total'), /outcome="credited",via="reconciler"\} 1/);

    // A second pass (or the late webhook) finds the money right: nothing is credited twice.
    const again = await reconcileSaleorOrders(deps);
    assert.deepEqual(again.mismatches.map((m) => m.kind).sort(), ['credit-without-paid-order', 'unmatched']);
    const late = await saleor.send(url, saleor.delivery('order_fully_paid', b.id));
    assert.equal((late.body.outcome as { result: string }).result, 'already-credited');
    assert.equal(await balance(lost.orgId), 800);
    assert.equal(await balance(refunded.orgId), 600);
  });

  it('an order the ledger refuses (past the balance limit) does not keep the others from being credited', async () => {
    const big = { sku: 'big-credit', minorPerUnit: 2n ** 52n, currency: 'EUR' };
    const deps = { sequelize, now: () => new Date(), product: big, orders: createSaleorOrderReader({ apiUrl: saleor.apiUrl, appToken: saleor.appToken }) };
    const refused = await insertOrganization(sequelize);
    const fine = await insertOrganization(sequelize);
    const x = saleor.pay(saleor.createOrder({ orgId: refused.orgId, creditSku: 'big-credit', creditUnits: 3 }).id);
    saleor.pay(saleor.createOrder({ orgId: fine.orgId, creditSku: 'big-credit', creditUnits: 1 }).id);
    const result = await reconcileSaleorOrders(deps);
    assert.deepEqual(result.failures.map((f) => f.orderNumber), [x.number]);
    assert.match(result.failures[0]!.error, /would take it past/);
    assert.equal(await balance(fine.orgId), 2 ** 52);
    assert.equal(await balance(refused.orgId), 0);
  });

  it('runs on one replica at a time', async () => {
    const reader = createSaleorOrderReader({ apiUrl: saleor.apiUrl, appToken: saleor.appToken });
    // A slow Saleor: the leader still holds the lock when the other replica tries.
    const slow = { list: async (where: Parameters<typeof reader.list>[0]) => (await new Promise((resolve) => setTimeout(resolve, 300)), reader.list(where)) };
    const deps = { sequelize, now: () => new Date(), product: CREDIT_PRODUCT, orders: slow };
    const runs = await Promise.all([runSaleorReconcile(deps), runSaleorReconcile(deps)]);
    assert.deepEqual(runs.map((r) => r.leader).sort(), [false, true]);
  });

  it('the window is yesterday and today so far, UTC', () => {
    const now = new Date('2026-12-06T00:30:00+02:00');
    assert.deepEqual(reconcileWindow(now), { from: new Date('2026-12-04T00:00:00Z'), to: now });
  });

  it('a wrong app token is a read error that needs a person; an unreachable Saleor one that a later pass may not meet', async () => {
    const wrong = createSaleorOrderReader({ apiUrl: saleor.apiUrl, appToken: 'not-the-token' });
    await assert.rejects(wrong.list({ ids: [] }), (error: unknown) => error instanceof SaleorReadError && !error.retryable && /SALEOR_APP_TOKEN/.test(error.message));
    const down = createSaleorOrderReader({ apiUrl: 'http://127.0.0.1:1/graphql/', appToken: saleor.appToken });
    await assert.rejects(down.list({ ids: [] }), (error: unknown) => error instanceof SaleorReadError && error.retryable);
  });
});
