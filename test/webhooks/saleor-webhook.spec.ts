import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { auditLedger } from '../../src/domain/billing/wallets.ts';
import { SALEOR_SUBSCRIPTION_QUERY, SaleorOrderSchema } from '../../src/domain/billing/saleor-order.ts';
import type { Metrics } from '../../src/metrics.ts';
import { insertOrganization } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { newKey, signDetached, startSaleorDouble, type SaleorDouble } from '../support/saleor-double.ts';
import { startSaleorReceiver } from '../support/saleor-receiver.ts';


describe('POST /webhooks/saleor', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let saleor: SaleorDouble;
  let server: Awaited<ReturnType<typeof startSaleorReceiver>>;
  let metrics: Metrics;
  let url: string;

  before(async () => {
    sequelize = createTestSequelize(10);
    saleor = await startSaleorDouble();
    // A short cooldown so that the rotation specs need not wait jose's 30 s.
    server = await startSaleorReceiver(sequelize, saleor.apiUrl, { cooldownMs: 200 });
    metrics = server.metrics;
    url = server.url;
  });
  after(async () => {
    await server.close();
    await saleor.close();
    await sequelize.close();
  });

  async function balanceOf(orgId: string): Promise<number> {
    const [row] = await sequelize.query<{ balance: string }>(`SELECT balance FROM ledger_accounts WHERE kind = 'wallet' AND organization_id = :orgId AND currency = 'EUR'`, {
      type: QueryTypes.SELECT,
      replacements: { orgId },
    });
    return row ? Number(row.balance) : 0;
  }
  async function transfers(orgId: string): Promise<number> {
    const [row] = await sequelize.query<{ n: string }>(
      `SELECT count(*) AS n FROM ledger_transfers t JOIN ledger_accounts w ON w.id IN (t.debit_account_id, t.credit_account_id) WHERE w.organization_id = :orgId`,
      { type: QueryTypes.SELECT, replacements: { orgId } },
    );
    return Number(row!.n);
  }
  async function paidOrder(units: number) {
    const { orgId } = await insertOrganization(sequelize);
    const order = saleor.createOrder({ orgId, creditUnits: units });
    saleor.pay(order.id);
    return { orgId, order };
  }

  it('a signed "order fully paid" delivered three times credits the wallet once', async () => {
    const { orgId, order } = await paidOrder(25);
    const delivery = saleor.delivery('order_fully_paid', order.id);
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await saleor.send(url, delivery));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
    assert.equal((answers[0]!.body.outcome as { result: string }).result, 'credited');
    assert.deepEqual(answers.map((a) => a.body.duplicate), [false, true, true]);
    assert.equal(await balanceOf(orgId), 2500, '25 units × 100 minor units');
    assert.equal(await transfers(orgId), 1);
    const [delivered] = await sequelize.query<{ attempts: number }>(`SELECT attempts FROM webhook_deliveries WHERE source = 'saleor' AND event = 'order_fully_paid' ORDER BY received_at DESC LIMIT 1`, { type: QueryTypes.SELECT });
    assert.equal(delivered!.attempts, 3);
    // A new event about the same order (another body: a later issuedAt) credits nothing either.
    const again = await saleor.send(url, saleor.delivery('order_fully_paid', order.id));
    assert.equal((again.body.outcome as { result: string }).result, 'already-credited');
    assert.equal(await balanceOf(orgId), 2500);
  });

  it('the same delivery sent ten times at once credits once', async () => {
    const { orgId, order } = await paidOrder(7);
    const delivery = saleor.delivery('order_fully_paid', order.id);
    // Ten copies of one delivery, and ten distinct events about the same order.
    const copies = await Promise.all([
      ...Array.from({ length: 10 }, () => saleor.send(url, delivery)),
      ...Array.from({ length: 10 }, () => saleor.send(url, saleor.delivery('order_fully_paid', order.id))),
    ]);
    assert.ok(copies.every((c) => c.status === 200), JSON.stringify(copies.map((c) => c.status)));
    assert.equal(copies.filter((c) => (c.body.outcome as { result: string }).result === 'credited' && c.body.duplicate === false).length, 1);
    assert.equal(await balanceOf(orgId), 700);
    assert.equal(await transfers(orgId), 1);
    const audit = await auditLedger({ sequelize, now: () => new Date() });
    assert.equal(audit.total, 0n);
    assert.deepEqual(audit.discrepancies, []);
  });

  it('a forged delivery changes nothing: a body edited after signing, a key that is not Saleor\'s, a signature of another body', async () => {
    const { orgId, order } = await paidOrder(10);
    const genuine = saleor.delivery('order_fully_paid', order.id);
    const before = await sequelize.query(`SELECT count(*) AS n FROM webhook_deliveries`, { type: QueryTypes.SELECT });

    const edited = { ...genuine, body: genuine.body.replace('"fractionalAmount": 1000', '"fractionalAmount": 1001') };
    assert.notEqual(edited.body, genuine.body);
    const forgedBody = await saleor.send(url, edited);
    assert.equal(forgedBody.status, 401);
    assert.equal(forgedBody.body.code, 'invalid-signature');

    // An attacker's own RSA key, under Saleor's current kid and under a kid of its own.
    const attacker = await newKey();
    for (const kid of [saleor.kid(), attacker.kid]) {
      const forged = await saleor.send(url, genuine, (h) => {
        h['Saleor-Signature'] = signDetached(genuine.body, { kid, privateKey: attacker.privateKey });
      });
      assert.equal(forged.status, 401, `kid ${kid}`);
    }
    const otherBody = saleor.delivery('order_fully_paid', saleor.createOrder({ orgId, creditUnits: 1 }).id);
    const swapped = await saleor.send(url, genuine, (h) => {
      h['Saleor-Signature'] = otherBody.headers['Saleor-Signature']!;
    });
    assert.equal(swapped.status, 401);
    // HS256 with the public key as the secret (the classic algorithm confusion) and alg none.
    for (const alg of ['HS256', 'none']) {
      const header = Buffer.from(JSON.stringify({ alg, b64: false, crit: ['b64'], kid: saleor.kid(), typ: 'JWT' })).toString('base64url');
      const confused = await saleor.send(url, genuine, (h) => {
        h['Saleor-Signature'] = `${header}..${Buffer.from('x').toString('base64url')}`;
      });
      assert.equal(confused.status, 401, alg);
    }
    // Deliveries from another Saleor (Saleor-Api-Url) are not this service's, even validly signed by it.
    const elsewhere = await saleor.send(url, genuine, (h) => {
      h['Saleor-Api-Url'] = 'https://other-shop.example.com/graphql/';
    });
    assert.equal(elsewhere.status, 401);

    assert.equal(await balanceOf(orgId), 0);
    assert.deepEqual(await sequelize.query(`SELECT count(*) AS n FROM webhook_deliveries`, { type: QueryTypes.SELECT }), before, 'nothing recorded');
    // The genuine one still goes through.
    assert.equal((await saleor.send(url, genuine)).status, 200);
    assert.equal(await balanceOf(orgId), 1000);
  });

  it('missing or malformed headers get 400 and change nothing', async () => {
    const { orgId, order } = await paidOrder(3);
    const genuine = saleor.delivery('order_fully_paid', order.id);
    const cases: [string, (h: Record<string, string>) => void][] = [
      ['no Saleor-Signature', (h) => delete h['Saleor-Signature']],
      ['no Saleor-Event', (h) => delete h['Saleor-Event']],
      ['no Saleor-Api-Url', (h) => delete h['Saleor-Api-Url']],
      ['an HMAC signature (a webhook with a secret key)', (h) => (h['Saleor-Signature'] = 'a'.repeat(64))],
      ['an attached JWS', (h) => (h['Saleor-Signature'] = 'aaa.bbb.ccc')],
      ['a signature of 10,000 characters', (h) => (h['Saleor-Signature'] = `${'a'.repeat(5000)}..${'b'.repeat(5000)}`)],
      ['an event name that is not one', (h) => (h['Saleor-Event'] = 'ORDER FULLY PAID; rm -rf')],
    ];
    for (const [name, edit] of cases) {
      const response = await saleor.send(url, genuine, edit);
      assert.equal(response.status, 400, name);
    }
    assert.equal(await balanceOf(orgId), 0);
  });

  it('after Saleor rotates its key, a delivery signed with the new key is accepted and one with the rotated-out key is refused', async () => {
    const { orgId, order } = await paidOrder(4);
    // Warm the cache with the current key.
    const warm = await paidOrder(1);
    assert.equal((await saleor.send(url, saleor.delivery('order_fully_paid', warm.order.id))).status, 200);
    const oldSigned = saleor.delivery('order_fully_paid', order.id);
    await saleor.rotateKey();
    const fetchesBefore = saleor.jwksFetches();
    await new Promise((resolve) => setTimeout(resolve, 250)); // past the cooldown
    const fresh = await saleor.send(url, saleor.delivery('order_fully_paid', order.id));
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.equal(saleor.jwksFetches(), fetchesBefore + 1, 'the unknown kid made the verifier read the JWKS again, once');
    assert.equal(await balanceOf(orgId), 400);
    // The old key is gone from Saleor's JWKS: a delivery still signed with it (a replay) is refused.
    await new Promise((resolve) => setTimeout(resolve, 250));
    const stale = await saleor.send(url, oldSigned);
    assert.equal(stale.status, 401, JSON.stringify(stale.body));
    assert.equal(await balanceOf(orgId), 400);
  });

  it('an unknown kid within the cooldown answers 503, which Saleor retries, and the retry is credited', async () => {
    // A receiver of its own whose cooldown outlasts a slow machine's steps.
    const receiver = await startSaleorReceiver(sequelize, saleor.apiUrl, { cooldownMs: 1500 });
    try {
      const { orgId, order } = await paidOrder(2);
      const warm = await paidOrder(1);
      const next = await newKey(); // made ahead: RSA key generation is slow on a busy machine
      assert.equal((await saleor.send(receiver.url, saleor.delivery('order_fully_paid', warm.order.id))).status, 200); // reads the JWKS
      await saleor.rotateKey(next);
      const delivery = saleor.delivery('order_fully_paid', order.id);
      const first = await saleor.send(receiver.url, delivery);
      assert.equal(first.status, 503);
      assert.equal(await balanceOf(orgId), 0);
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const retry = await saleor.send(receiver.url, delivery);
      assert.equal(retry.status, 200);
      assert.equal(await balanceOf(orgId), 200);
    } finally {
      await receiver.close();
    }
  });

  it("a JWKS that cannot be read answers 503 (Saleor retries) and changes nothing", async () => {
    // A Saleor whose site serves no JWKS: the double's GraphQL URL under another origin that answers nothing.
    const unreachable = 'http://127.0.0.1:1/graphql/';
    const receiver = await startSaleorReceiver(sequelize, unreachable);
    try {
      const { orgId, order } = await paidOrder(2);
      const response = await saleor.send(receiver.url, saleor.delivery('order_fully_paid', order.id), (h) => {
        h['Saleor-Api-Url'] = unreachable;
      });
      assert.equal(response.status, 503, JSON.stringify(response.body));
      assert.equal(await balanceOf(orgId), 0);
    } finally {
      await receiver.close();
    }
  });

  it('a refund takes back its share of the credit once; a full refund takes back the rest', async () => {
    const { orgId, order } = await paidOrder(10); // 10 units at 1.00 EUR: 1000 minor units of credit
    await saleor.send(url, saleor.delivery('order_fully_paid', order.id));
    saleor.refund(order.id, 300);
    const partial = saleor.delivery('order_refunded', order.id);
    const first = await saleor.send(url, partial);
    assert.deepEqual((first.body.outcome as { refund: unknown }).refund, { due: 300, debited: 300, shortfall: 0 });
    assert.equal((await saleor.send(url, partial)).body.duplicate, true);
    // The same refund state in another event body (ORDER_REFUNDED again) takes nothing more.
    await saleor.send(url, saleor.delivery('order_refunded', order.id));
    assert.equal(await balanceOf(orgId), 700);
    saleor.refund(order.id, 700);
    const full = saleor.delivery('order_fully_refunded', order.id);
    await Promise.all([saleor.send(url, full), saleor.send(url, full), saleor.send(url, saleor.delivery('order_refunded', order.id))]);
    assert.equal(await balanceOf(orgId), 0);
    // An older refund event arriving late takes nothing.
    assert.equal((await saleor.send(url, partial)).body.duplicate, true);
    const audit = await auditLedger({ sequelize, now: () => new Date() });
    assert.equal(audit.total, 0n);
  });

  it('a refund larger than what the wallet has left takes what is available and records the shortfall', async () => {
    const { orgId, order } = await paidOrder(10);
    await saleor.send(url, saleor.delivery('order_fully_paid', order.id));
    // The org spent 800 of the 1000 meanwhile.
    const [wallet] = await sequelize.query<{ id: string }>(`SELECT id FROM ledger_accounts WHERE kind = 'wallet' AND organization_id = :orgId`, { type: QueryTypes.SELECT, replacements: { orgId } });
    await sequelize.transaction(async (tx) => {
      const { ensurePlatformAccount, postTransfer, lockWallet } = await import('../../src/domain/billing/ledger.ts');
      const deps = { sequelize, now: () => new Date() };
      await lockWallet(deps, tx, wallet!.id);
      const revenue = await ensurePlatformAccount(deps, tx, 'revenue', 'EUR');
      await postTransfer(deps, tx, { kind: 'usage', currency: 'EUR', debitAccountId: wallet!.id, creditAccountId: revenue, amount: 800n, actor: 'test' });
    });
    saleor.refund(order.id, 1000);
    const refunded = await saleor.send(url, saleor.delivery('order_fully_refunded', order.id));
    assert.deepEqual((refunded.body.outcome as { refund: unknown }).refund, { due: 1000, debited: 200, shortfall: 800 });
    assert.equal(await balanceOf(orgId), 0);
    const [row] = await sequelize.query<{ debited_minor: string; shortfall_minor: string }>(`SELECT debited_minor, shortfall_minor FROM saleor_orders WHERE saleor_order_id = :id`, { type: QueryTypes.SELECT, replacements: { id: order.id } });
    assert.deepEqual(row, { debited_minor: '200', shortfall_minor: '800' });
    const shortfall = await metrics.registry.getSingleMetricAsString('saleor_refund_shortfall_minor_total');
    assert.match(shortfall, /saleor_refund_shortfall_minor_total\{currency="EUR"\} 800/);
  });

  it('an order naming no org, or an unknown one, is recorded as unmatched and credits nobody; once its metadata names an org it is credited', async () => {
    const missing = saleor.createOrder({ creditUnits: 5 });
    saleor.pay(missing.id);
    const unknown = saleor.createOrder({ orgId: randomUUID(), creditUnits: 5 });
    saleor.pay(unknown.id);
    const notUuid = saleor.createOrder({ orgId: "'; DROP TABLE organizations; --", creditUnits: 5 });
    saleor.pay(notUuid.id);
    for (const order of [missing, unknown, notUuid]) {
      const answer = await saleor.send(url, saleor.delivery('order_fully_paid', order.id));
      assert.equal(answer.status, 200);
      assert.equal((answer.body.outcome as { result: string }).result, 'unmatched');
    }
    const rows = await sequelize.query<{ saleor_order_id: string; unmatched_reason: string }>(`SELECT saleor_order_id, unmatched_reason FROM saleor_orders WHERE status = 'unmatched' AND saleor_order_id IN (:ids) ORDER BY order_number`, {
      type: QueryTypes.SELECT,
      replacements: { ids: [missing.id, unknown.id, notUuid.id] },
    });
    assert.deepEqual(rows.map((r) => r.unmatched_reason), ['missing-org-metadata', 'unknown-org', 'unknown-org']);
    const { orgId } = await insertOrganization(sequelize);
    saleor.setMetadata(missing.id, 'gsv.io/org-id', orgId, 'privateMetadata');
    const fixed = await saleor.send(url, saleor.delivery('order_fully_paid', missing.id));
    assert.equal((fixed.body.outcome as { result: string }).result, 'credited');
    assert.equal(await balanceOf(orgId), 500);
  });

  it('orders that buy no credit, unpaid orders and other events are acknowledged with 202 and credit nothing', async () => {
    const { orgId } = await insertOrganization(sequelize);
    const other = saleor.createOrder({ orgId, creditUnits: 0, otherLine: { sku: 'tshirt', quantity: 1, unitPriceMinor: 2000 } });
    saleor.pay(other.id);
    const unpaid = saleor.createOrder({ orgId, creditUnits: 3 });
    for (const delivery of [saleor.delivery('order_fully_paid', other.id), saleor.delivery('order_fully_paid', unpaid.id), saleor.delivery('order_created', unpaid.id)]) {
      const answer = await saleor.send(url, delivery);
      assert.equal(answer.status, 202, delivery.event);
    }
    assert.equal(await balanceOf(orgId), 0);
  });

  it('a validly signed body that is not the subscription payload gets 400 and changes nothing', async () => {
    const { orgId, order } = await paidOrder(3);
    const genuine = JSON.parse(saleor.delivery('order_fully_paid', order.id).body) as { order: Record<string, unknown> };
    const withErrors = { ...genuine, errors: [{ message: 'You need one of the following permissions: MANAGE_ORDERS' }] };
    const cases = [
      { ...genuine, order: { ...genuine.order, lines: 'many' } },
      { ...genuine, order: { ...genuine.order, totalCharged: { currency: 'EUR', amount: 3.0 } } },
      withErrors,
      [genuine],
    ];
    for (const body of cases) {
      const response = await saleor.send(url, saleor.signed('order_fully_paid', JSON.stringify(body)));
      assert.equal(response.status, 400, JSON.stringify(response.body));
    }
    const notJson = await saleor.send(url, saleor.signed('order_fully_paid', '{"order": '));
    assert.equal(notJson.status, 400);
    assert.equal(await balanceOf(orgId), 0);
  });

  it('the subscription query selects every field the payload schema requires', () => {
    for (const field of Object.keys(SaleorOrderSchema.properties)) {
      assert.match(SALEOR_SUBSCRIPTION_QUERY, new RegExp(`\\b${field}\\b`), field);
    }
    for (const event of ['OrderFullyPaid', 'OrderRefunded', 'OrderFullyRefunded']) assert.match(SALEOR_SUBSCRIPTION_QUERY, new RegExp(`on ${event} \\{ order`));
  });
});
