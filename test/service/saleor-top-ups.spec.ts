import assert from 'node:assert/strict';
import { startServiceWithWorkspace, type InProcessService } from '../support/in-process-service.ts';
import { useSpecDatabase } from '../support/database.ts';
import { startSaleorDouble, type SaleorDouble } from '../support/saleor-double.ts';
import type { Caller } from '../support/scratch-service.ts';

/** The whole service as startService wires it from SALEOR_* configuration, against the Saleor double. */
describe('Saleor top-ups through the running service', () => {
  useSpecDatabase();
  let saleor: SaleorDouble;
  let app: InProcessService;
  let caller: Caller;
  let org: string;

  before(async () => {
    saleor = await startSaleorDouble();
    ({ app, caller, org } = await startServiceWithWorkspace('saleor', {
      SALEOR_API_URL: saleor.apiUrl,
      SALEOR_APP_TOKEN: saleor.appToken,
      SALEOR_CREDIT_MINOR_PER_UNIT: '250',
      SALEOR_RECONCILE_INTERVAL_MS: '300',
    }));
  });
  after(async () => {
    await app?.close();
    await saleor?.close();
  });

  async function wallet(): Promise<{ id: string; balance: number }> {
    const orgBody = (await (await fetch(`${app.url}/orgs/${org}`, { headers: caller.headers })).json()) as { id: string; wallets: { id: string; currency: string }[] };
    const eur = orgBody.wallets.find((w) => w.currency === 'EUR')!;
    return (await (await fetch(`${app.url}/billing/wallets/${eur.id}`, { headers: caller.headers })).json()) as { id: string; balance: number };
  }

  it('a signed "order fully paid" delivered three times credits once; a lost one is credited by the reconciler', async () => {
    const orgId = ((await (await fetch(`${app.url}/orgs/${org}`, { headers: caller.headers })).json()) as { id: string }).id;
    const start = (await wallet()).balance;
    const order = saleor.pay(saleor.createOrder({ orgId, creditUnits: 4 }).id);
    const delivery = saleor.delivery('order_fully_paid', order.id);
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await saleor.send(`${app.url}/webhooks/saleor`, delivery)).status);
    assert.deepEqual(statuses, [200, 200, 200]);
    assert.equal((await wallet()).balance, start + 1000);

    saleor.pay(saleor.createOrder({ orgId, creditUnits: 2 }).id); // no webhook: lost
    const deadline = Date.now() + 15_000;
    while ((await wallet()).balance !== start + 1500 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await wallet()).balance, start + 1500);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    // The reconciler runs every 300 ms here, so it may also be the one that credits the first order.
    const credited = (via: string) => Number(new RegExp(`saleor_orders_total\\{outcome="credited",via="${via}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.equal(credited('webhook') + credited('reconciler'), 2);
    assert.ok(credited('reconciler') >= 1, 'the lost one');
    assert.match(metrics, /webhook_deliveries_total\{source="saleor",outcome="duplicate"\} 2/);
  });
});
