import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { saleorRoutes } from '../../src/api/routes/saleor-routes.ts';
import type { SaleorOrder } from '../../src/domain/billing/saleor-order.ts';
import { applySaleorOrder } from '../../src/domain/billing/saleor-top-ups.ts';
import { startApiHarness, uniqueUser, userWithWorkspace, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

const PRODUCT = { sku: 'gsv-credit', minorPerUnit: 100n, currency: 'EUR' };
const money = (minor: number) => ({ currency: 'EUR', amount: minor / 100, fractionalAmount: minor, fractionDigits: 2 });
const paidOrder = (number: string, orgId?: string): SaleorOrder => ({
  id: Buffer.from(`Order:${randomUUID()}`).toString('base64'),
  number,
  created: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
  status: 'UNFULFILLED',
  chargeStatus: 'FULL',
  checkoutId: null,
  metadata: orgId ? [{ key: 'gsv.io/org-id', value: orgId }] : [],
  privateMetadata: [],
  total: { gross: money(500) },
  totalCharged: money(500),
  totalRefunded: money(0),
  lines: [{ id: 'T3JkZXJMaW5lOjE=', productSku: 'gsv-credit', quantity: 5, variant: { id: 'UHJvZHVjdFZhcmlhbnQ6Nw==', sku: 'gsv-credit' } }],
});

describe('GET /billing/saleor/orders', () => {
  useSpecDatabase();
  let api: ApiHarness;
  before(async () => {
    api = await startApiHarness({ moreRoutes: (sequelize) => saleorRoutes({ sequelize, now: () => new Date() }) });
  });
  after(() => api.close());

  it('shows platform admins the unmatched orders (nothing credited) and the credited ones, page by page; others get 403', async () => {
    const member = await userWithWorkspace(api, 'saleor');
    const admin = await api.tokenFor(uniqueUser('root', { platformAdmin: true }));
    const deps = { sequelize: api.sequelize, now: () => new Date() };
    const orders = [paidOrder('2001'), paidOrder('2002', randomUUID()), paidOrder('2003', member.orgId)];
    for (const order of orders) {
      await api.sequelize.transaction((tx) => applySaleorOrder(deps, tx, { order, product: PRODUCT }));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const unmatched = await api.call('GET', '/billing/saleor/orders?status=unmatched&limit=1', { token: admin });
    assert.equal(unmatched.status, 200);
    const items = unmatched.body.items as { orderNumber: string; unmatchedReason: string; credit: number; walletId: string | null }[];
    assert.deepEqual(items.map((i) => [i.orderNumber, i.unmatchedReason, i.credit, i.walletId]), [['2002', 'unknown-org', 500, null]]);
    const next = await api.call('GET', `/billing/saleor/orders?status=unmatched&limit=1&cursor=${String(unmatched.body.nextCursor)}`, { token: admin });
    assert.deepEqual((next.body.items as { orderNumber: string }[]).map((i) => i.orderNumber), ['2001']);
    const credited = await api.call('GET', '/billing/saleor/orders?status=credited', { token: admin });
    const mine = (credited.body.items as { orderNumber: string; organizationId: string }[]).find((i) => i.orderNumber === '2003');
    assert.equal(mine?.organizationId, member.orgId);
    assert.equal((await api.call('GET', '/billing/saleor/orders', { token: member.token })).status, 403);
    assert.equal((await api.call('GET', '/billing/saleor/orders?cursor=bm90LWEtY3Vyc29y', { token: admin })).status, 400);
  });
});
