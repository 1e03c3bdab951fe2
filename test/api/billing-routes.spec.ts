import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { createAuthenticate } from '../../src/api/auth/authenticate.ts';
import { billingRoutes } from '../../src/api/routes/billing-routes.ts';
import { generateApiToken, upsertApiToken } from '../../src/db/api-tokens.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { auditLedger } from '../../src/domain/billing/wallets.ts';
import { ensureWallet, findOrganizationId } from '../../src/domain/billing/ledger.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { listen, type Listening } from '../support/http.ts';
import { meterUsage } from '../../src/domain/billing/metering.ts';
import { putMember, removeMember } from '../../src/domain/members.ts';
import type { Principal } from '../../src/domain/principal.ts';
import { createOrganization, pricedOfferingVersion, readyInstance, testClock } from '../domain/billing/billing-fixtures.ts';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

describe('billing API', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let server: Listening;
  let adminToken: string;
  let memberToken: string;
  let outsiderToken: string;
  let org: { id: string; slug: string };
  const clock = testClock();

  async function token(subject: string, platformAdmin: boolean): Promise<string> {
    const value = generateApiToken();
    await upsertApiToken(sequelize, value, { name: `billing-${subject}`, subject, platformAdmin });
    await sequelize.query(`INSERT INTO users (subject) VALUES (:subject) ON CONFLICT DO NOTHING`, { replacements: { subject } });
    return value;
  }

  async function call(method: string, path: string, bearer: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers };
  }

  async function walletOf(orgSlug: string, amount: number): Promise<string> {
    const walletId = await sequelize.transaction(async (tx) => {
      const deps = { sequelize, now: () => clock.now() };
      return ensureWallet(deps, tx, await findOrganizationId(deps, tx, orgSlug), 'EUR');
    });
    if (amount > 0) assert.equal((await call('POST', `/billing/wallets/${walletId}/credits`, adminToken, { amount, reason: 'test' })).status, 201);
    return walletId;
  }

  before(async () => {
    sequelize = createTestSequelize(20);
    const app = createApp({
      logger: createLogger('silent'),
      metrics: createMetrics(),
      bodyLimitBytes: 1 << 20,
      routes: billingRoutes({ sequelize, now: () => clock.now(), defaultHoldTtlSeconds: 3600, memberHolds: { maxPendingMinor: 150, maxSeconds: 30 * 86_400 } }),
      authenticate: createAuthenticate({ sequelize }),
      sequelize,
    });
    server = await listen(app);
    const suffix = randomBytes(4).toString('hex');
    adminToken = await token(`admin-${suffix}`, true);
    memberToken = await token(`member-${suffix}`, false);
    outsiderToken = await token(`outsider-${suffix}`, false);
    org = await createOrganization(sequelize);
    await sequelize.query(`INSERT INTO memberships (organization_id, subject, role) VALUES (:org, :subject, 'member')`, {
      replacements: { org: org.id, subject: `member-${suffix}` },
    });
  });
  after(async () => {
    await server.close();
    await sequelize.close();
  });

  it('authorizes, shows the wallet, settles, and lists entries', async () => {
    const walletId = await walletOf(org.slug, 100);
    const held = await call('POST', '/billing/authorize', memberToken, { org: org.slug, amount: 30, currency: 'EUR', reference: 'order-1', expiresInSeconds: 600 });
    assert.equal(held.status, 201);
    assert.equal(held.body.status, 'pending');
    assert.equal(held.body.amount, 30);
    assert.equal(held.body.walletId, walletId);

    const wallet = await call('GET', `/billing/wallets/${walletId}`, memberToken);
    assert.equal(wallet.status, 200);
    assert.deepEqual(wallet.body, { id: walletId, org: org.slug, currency: 'EUR', balance: 100, pending: 30, available: 70 });

    const settled = await call('POST', '/billing/settle', memberToken, { authorizationId: held.body.id, amount: 25 });
    assert.equal(settled.status, 200);
    assert.equal(settled.body.status, 'settled');
    assert.equal(settled.body.capturedAmount, 25);

    const again = await call('POST', '/billing/void', memberToken, { authorizationId: held.body.id });
    assert.equal(again.status, 409);
    assert.equal(again.headers.get('content-type'), 'application/problem+json');
    assert.equal(again.body.code, 'authorization-already-settled');

    const entries = await call('GET', `/billing/wallets/${walletId}/entries?limit=1`, memberToken);
    assert.equal(entries.status, 200);
    assert.deepEqual((entries.body.items as { amount: number }[]).map((e) => e.amount), [-25]);
    const older = await call('GET', `/billing/wallets/${walletId}/entries?limit=1&cursor=${entries.body.nextCursor as string}`, memberToken);
    assert.deepEqual((older.body.items as { amount: number; kind: string }[]).map((e) => [e.kind, e.amount]), [['top-up', 100]]);
    assert.equal(older.body.nextCursor, null);
  });

  it('refuses (422, nothing written) a credit that would take the balance past what JSON carries exactly, and the wallet stays readable', async () => {
    // 9007199254740991 answered 500 after committing the credit, and every later read of the wallet 500.
    const own = await createOrganization(sequelize);
    const walletId = await walletOf(own.slug, 10);
    const refused = await call('POST', `/billing/wallets/${walletId}/credits`, adminToken, { amount: Number.MAX_SAFE_INTEGER, reason: 'fat finger' });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'balance-limit');
    const wallet = await call('GET', `/billing/wallets/${walletId}`, adminToken);
    assert.equal(wallet.status, 200);
    assert.equal(wallet.body.balance, 10, 'nothing was credited');
    const topped = await call('POST', `/billing/wallets/${walletId}/credits`, adminToken, { amount: Number.MAX_SAFE_INTEGER - 10, reason: 'up to the limit' });
    assert.equal(topped.status, 201);
    assert.equal(topped.body.balance, Number.MAX_SAFE_INTEGER);
    assert.equal((await call('GET', `/billing/wallets/${walletId}`, adminToken)).status, 200);
  });

  it('refuses (422 amount-out-of-range, nothing written) every amount past what JSON and the ledger carry exactly', async () => {
    const own = await createOrganization(sequelize);
    const walletId = await walletOf(own.slug, 100);
    const held = await call('POST', '/billing/authorize', adminToken, { org: own.slug, amount: 10, currency: 'EUR' });
    const entries = async () => ((await call('GET', `/billing/wallets/${walletId}/entries`, adminToken)).body.items as unknown[]).length;
    const before = await entries();
    // The JSON text as a client sends it: 2^53 + 1 reads as 2^53 once parsed, 2^63 overflows bigint.
    const raw = async (path: string, json: string) => {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: json });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    for (const amount of ['9007199254740992', '9007199254740993', '9223372036854775808', '1e300']) {
      const attempts = [
        raw('/billing/authorize', `{"org":"${own.slug}","currency":"EUR","amount":${amount}}`),
        raw(`/billing/wallets/${walletId}/credits`, `{"reason":"big","amount":${amount}}`),
        raw('/billing/settle', `{"authorizationId":"${held.body.id as string}","amount":${amount}}`),
      ];
      for (const reply of await Promise.all(attempts)) {
        assert.equal(reply.status, 422, `${amount}: ${JSON.stringify(reply.body)}`);
        assert.equal(reply.body.code, 'amount-out-of-range');
      }
    }
    const wallet = await call('GET', `/billing/wallets/${walletId}`, adminToken);
    assert.deepEqual([wallet.body.balance, wallet.body.pending], [100, 10], 'nothing was credited, held or captured');
    assert.equal(await entries(), before);
    assert.equal((await call('GET', `/billing/authorizations/${held.body.id as string}`, adminToken)).body.status, 'pending');
  });

  it('answers 402 for a currency the org has no wallet in without naming a wallet that would not exist', async () => {
    // The 402 named the walletId of a wallet made for the request and rolled back with it: 404 afterwards.
    const own = await createOrganization(sequelize);
    await walletOf(own.slug, 50);
    const refused = await call('POST', '/billing/authorize', adminToken, { org: own.slug, amount: 10, currency: 'USD' });
    assert.equal(refused.status, 402);
    assert.equal(refused.body.walletId, null);
    assert.match(String(refused.body.detail), /no USD wallet/);
    const short = await call('POST', '/billing/authorize', adminToken, { org: own.slug, amount: 500, currency: 'EUR' });
    assert.equal(short.status, 402);
    assert.equal((await call('GET', `/billing/wallets/${String(short.body.walletId)}`, adminToken)).status, 200, 'a wallet a 402 names exists');
  });

  it('answers 402 problem+json for insufficient funds and 422 for over-capture', async () => {
    const other = await createOrganization(sequelize);
    await walletOf(other.slug, 10);
    const refused = await call('POST', '/billing/authorize', adminToken, { org: other.slug, amount: 11, currency: 'EUR' });
    assert.equal(refused.status, 402);
    assert.equal(refused.body.code, 'payment-required');
    assert.equal(refused.body.available, 10);
    const held = await call('POST', '/billing/authorize', adminToken, { org: other.slug, amount: 10, currency: 'EUR' });
    const over = await call('POST', '/billing/settle', adminToken, { authorizationId: held.body.id, amount: 11 });
    assert.equal(over.status, 422);
    assert.equal(over.body.code, 'capture-exceeds-authorization');
  });

  it('hides wallets from non-members (404) and keeps top-ups for platform admins (403)', async () => {
    const walletId = await walletOf(org.slug, 0);
    assert.equal((await call('GET', `/billing/wallets/${walletId}`, outsiderToken)).status, 404);
    assert.equal((await call('GET', `/billing/wallets/${walletId}/entries`, outsiderToken)).status, 404);
    assert.equal((await call('POST', '/billing/authorize', outsiderToken, { org: org.slug, amount: 1, currency: 'EUR' })).status, 404);
    assert.equal((await call('POST', `/billing/wallets/${walletId}/credits`, memberToken, { amount: 5, reason: 'self-service' })).status, 403);
  });

  it('refuses a member resolving a hold someone else placed', async () => {
    await walletOf(org.slug, 50);
    const platformHold = await call('POST', '/billing/authorize', adminToken, { org: org.slug, amount: 5, currency: 'EUR' });
    assert.equal(platformHold.status, 201);
    assert.equal((await call('POST', '/billing/void', memberToken, { authorizationId: platformHold.body.id })).status, 403);
    assert.equal((await call('POST', '/billing/void', outsiderToken, { authorizationId: platformHold.body.id })).status, 404);
    assert.equal((await call('GET', `/billing/authorizations/${platformHold.body.id as string}`, outsiderToken)).status, 404);
    const seen = await call('GET', `/billing/authorizations/${platformHold.body.id as string}`, memberToken);
    assert.deepEqual([seen.status, seen.body.status, seen.body.amount], [200, 'pending', 5]);
  });

  it("lets an org's owner list every hold and void a member's hold on the whole balance; not another member, not the platform's", async () => {
    // A member could hold the whole available balance for 90 days; the owner got 403 voiding it
    // and had no way to list holds: the org could order nothing until a platform admin stepped in.
    const own = await createOrganization(sequelize);
    const suffix = randomBytes(4).toString('hex');
    const ownerToken = await token(`owner-${suffix}`, false);
    const greedyToken = await token(`greedy-${suffix}`, false);
    const bystanderToken = await token(`bystander-${suffix}`, false);
    for (const [subject, role] of [[`owner-${suffix}`, 'owner'], [`greedy-${suffix}`, 'member'], [`bystander-${suffix}`, 'member']] as const) {
      await sequelize.query('INSERT INTO memberships (organization_id, subject, role) VALUES (:org, :subject, :role)', { replacements: { org: own.id, subject, role } });
    }
    const walletId = await walletOf(own.slug, 100);
    const greedy = await call('POST', '/billing/authorize', greedyToken, { org: own.slug, amount: 100, currency: 'EUR', expiresInSeconds: 30 * 24 * 3600 });
    assert.equal(greedy.status, 201);
    assert.equal((await call('POST', '/billing/authorize', ownerToken, { org: own.slug, amount: 1, currency: 'EUR' })).status, 402, 'nothing left to hold while the member holds it all');

    const listed = await call('GET', `/billing/wallets/${walletId}/authorizations?status=pending`, ownerToken);
    assert.equal(listed.status, 200);
    assert.deepEqual((listed.body.items as { id: string; createdBy: string }[]).map((h) => [h.id, h.createdBy]), [[greedy.body.id, `greedy-${suffix}`]]);
    assert.equal((await call('GET', `/billing/wallets/${walletId}/authorizations`, outsiderToken)).status, 404);
    assert.equal((await call('POST', '/billing/void', bystanderToken, { authorizationId: greedy.body.id })).status, 403, 'another member may not');
    const voided = await call('POST', '/billing/void', ownerToken, { authorizationId: greedy.body.id });
    assert.equal(voided.status, 200, JSON.stringify(voided.body));
    assert.equal((await call('GET', `/billing/wallets/${walletId}`, ownerToken)).body.available, 100);
    const adminHold = await call('POST', '/billing/authorize', adminToken, { org: own.slug, amount: 5, currency: 'EUR' });
    assert.equal((await call('POST', '/billing/void', ownerToken, { authorizationId: adminHold.body.id })).status, 403, "a platform admin's hold is theirs");
  });

  it("caps a member's holds on a wallet in total and in lifetime (settings); owners and platform admins are not capped", async () => {
    // A member could hold the whole balance for 90 days: the org ordered nothing until someone stepped in.
    const own = await createOrganization(sequelize);
    const suffix = randomBytes(4).toString('hex');
    const [ownerToken, aliceToken, bobToken] = await Promise.all([token(`owner-${suffix}`, false), token(`alice-${suffix}`, false), token(`bob-${suffix}`, false)]);
    for (const [subject, role] of [[`owner-${suffix}`, 'owner'], [`alice-${suffix}`, 'member'], [`bob-${suffix}`, 'member']] as const) {
      await sequelize.query('INSERT INTO memberships (organization_id, subject, role) VALUES (:org, :subject, :role)', { replacements: { org: own.id, subject, role } });
    }
    const walletId = await walletOf(own.slug, 1000);
    const hold = (bearer: string, amount: number, expiresInSeconds?: number) =>
      call('POST', '/billing/authorize', bearer, { org: own.slug, amount, currency: 'EUR', ...(expiresInSeconds ? { expiresInSeconds } : {}) });

    const first = await hold(aliceToken, 100);
    assert.equal(first.status, 201);
    assert.equal(new Date(first.body.expiresAt as string).getTime() - clock.now().getTime(), 3600_000, 'the default lifetime when it is within the cap');
    const over = await hold(aliceToken, 60);
    assert.equal(over.status, 403, JSON.stringify(over.body));
    assert.equal(over.body.code, 'member-hold-limit');
    assert.deepEqual([over.body.limit, over.body.heldByYou, over.body.requested], [150, 100, 60]);
    assert.equal((await hold(aliceToken, 50)).status, 201, 'up to the cap');
    assert.equal((await hold(bobToken, 150)).status, 201, "another member's holds are their own");
    const tooLong = await hold(bobToken, 1, 30 * 86_400 + 1);
    assert.equal(tooLong.status, 422);
    assert.equal(tooLong.body.code, 'hold-lifetime-limit');
    assert.equal((await hold(ownerToken, 600, 60 * 86_400)).status, 201, 'an owner is not capped');
    const wallet = await call('GET', `/billing/wallets/${walletId}`, ownerToken);
    assert.deepEqual([wallet.body.pending, wallet.body.available], [900, 100], 'refused holds held nothing');
    // Released, a member's room comes back.
    await call('POST', '/billing/void', aliceToken, { authorizationId: first.body.id });
    assert.equal((await hold(aliceToken, 100)).status, 201);
  });

  it("releases a member's holds when they leave the org or may only read: no purpose is left for them", async () => {
    const saved = clock.now();
    clock.set(new Date()); // membership changes run on the real clock
    try {
      const own = await createOrganization(sequelize);
      const suffix = randomBytes(4).toString('hex');
      const [aliceToken, bobToken] = await Promise.all([token(`alice-${suffix}`, false), token(`bob-${suffix}`, false), token(`owner-${suffix}`, false)]);
      for (const [subject, role] of [[`owner-${suffix}`, 'owner'], [`alice-${suffix}`, 'member'], [`bob-${suffix}`, 'member']] as const) {
        await sequelize.query('INSERT INTO memberships (organization_id, subject, role) VALUES (:org, :subject, :role)', { replacements: { org: own.id, subject, role } });
      }
      const walletId = await walletOf(own.slug, 1000);
      const alice = await call('POST', '/billing/authorize', aliceToken, { org: own.slug, amount: 100, currency: 'EUR' });
      const bob = await call('POST', '/billing/authorize', bobToken, { org: own.slug, amount: 100, currency: 'EUR' });
      const admin = await call('POST', '/billing/authorize', adminToken, { org: own.slug, amount: 7, currency: 'EUR' });
      const owner: Principal = { subject: `owner-${suffix}`, platformAdmin: false, via: 'api-token' };
      await sequelize.transaction((tx) => removeMember(sequelize, tx, owner, own.slug, `alice-${suffix}`, { mirrorToKeycloak: false }));
      await sequelize.transaction((tx) => putMember(sequelize, tx, owner, own.slug, { subject: `bob-${suffix}`, role: 'viewer' }, { mirrorToKeycloak: false }));
      const status = async (reply: Reply) => (await call('GET', `/billing/authorizations/${reply.body.id as string}`, adminToken)).body.status;
      assert.deepEqual([await status(alice), await status(bob), await status(admin)], ['voided', 'voided', 'pending']);
      assert.equal((await call('GET', `/billing/wallets/${walletId}`, adminToken)).body.available, 993);
    } finally {
      clock.set(saved);
    }
  });

  it('same Idempotency-Key 50 times in parallel places one hold; the same key with another amount is 422 and changes nothing', async () => {
    const fresh = await createOrganization(sequelize);
    const walletId = await walletOf(fresh.slug, 1000);
    const key = `hold-${randomBytes(6).toString('hex')}`;
    const body = { org: fresh.slug, amount: 10, currency: 'EUR', reference: 'idempotent' };
    const replies = await Promise.all(Array.from({ length: 50 }, () => call('POST', '/billing/authorize', adminToken, body, { 'Idempotency-Key': key })));
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [201]);
    assert.equal(new Set(replies.map((r) => r.body.id)).size, 1);
    assert.equal(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true').length, 49);
    const [{ count }] = (await sequelize.query(`SELECT count(*)::int AS count FROM billing_authorizations WHERE wallet_id = :walletId`, {
      type: QueryTypes.SELECT,
      replacements: { walletId },
    })) as [{ count: number }];
    assert.equal(count, 1);

    const before = await call('GET', `/billing/wallets/${walletId}`, adminToken);
    const reused = await call('POST', '/billing/authorize', adminToken, { ...body, amount: 20 }, { 'Idempotency-Key': key });
    assert.equal(reused.status, 422);
    assert.equal(reused.body.code, 'idempotency-key-reused');
    assert.deepEqual((await call('GET', `/billing/wallets/${walletId}`, adminToken)).body, before.body);
    assert.deepEqual(before.body.pending, 10);

    const audit = await auditLedger({ sequelize, now: () => clock.now() });
    assert.equal(audit.total, 0n);
  });

  it('validates amounts: no floats, no zero holds, no strings', async () => {
    for (const amount of [1.5, 0, '10', -1]) {
      const reply = await call('POST', '/billing/authorize', adminToken, { org: org.slug, amount, currency: 'EUR' });
      assert.equal(reply.status, 400, `amount ${JSON.stringify(amount)}`);
      assert.equal(reply.body.code, 'validation-failed');
    }
  });

  describe('statement', () => {
    let own: { id: string; slug: string };
    let walletId: string;
    let first: string;
    let second: string;
    let ownMember: string;
    const reason = '=HYPERLINK("x"), a "bonus"\nfor March';

    before(async () => {
      clock.set('2026-03-02T10:00:00Z');
      own = await createOrganization(sequelize);
      const subject = `own-member-${randomBytes(4).toString('hex')}`;
      ownMember = await token(subject, false);
      await sequelize.query(`INSERT INTO memberships (organization_id, subject, role) VALUES (:org, :subject, 'member')`, { replacements: { org: own.id, subject } });
      walletId = await walletOf(own.slug, 1000);
      const meter = { sequelize, now: () => clock.now() };
      first = await readyInstance(sequelize, own.id, await pricedOfferingVersion(sequelize, { hourlyRate: 5 }), new Date('2026-03-02T10:00:00Z'));
      second = await readyInstance(sequelize, own.id, await pricedOfferingVersion(sequelize, { hourlyRate: 3 }), new Date('2026-03-02T10:30:00Z'));
      clock.set('2026-03-02T13:10:00Z');
      await meterUsage(meter);
      clock.set('2026-03-02T14:00:00Z');
      assert.equal((await call('POST', `/billing/wallets/${walletId}/credits`, adminToken, { amount: 100, reason })).status, 201);
      clock.set('2026-03-02T15:05:00Z');
      await meterUsage(meter);
      clock.set('2026-03-02T16:00:00Z');
    });

    it('shows the opening balance, each instance’s hours as ranges across metering runs, a subtotal per instance and the closing balance', async () => {
      const reply = await call('GET', `/billing/wallets/${walletId}/statement?from=2026-03-02T10:30:00Z&to=2026-03-02T16:00:00Z`, ownMember);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const body = reply.body as { openingBalance: number; credits: number; debits: number; closingBalance: number; lines: Record<string, unknown>[]; byInstance: Record<string, unknown>[] };
      assert.deepEqual([body.openingBalance, body.credits, body.debits, body.closingBalance], [1000, 100, -40, 1060]);
      // Metering charges instances in id order: which comes first is chance.
      const byRate = (a: Record<string, unknown>, b: Record<string, unknown>) => Number(b.hourlyRate ?? b.total) - Number(a.hourlyRate ?? a.total);
      const usage = body.lines.filter((l) => l.kind === 'usage').sort(byRate).map((l) => [l.instanceId, l.from, l.to, l.hours, l.hourlyRate, l.amount]);
      assert.deepEqual(usage, [
        [first, '2026-03-02T10:00:00.000Z', '2026-03-02T15:00:00.000Z', 5, 5, -25],
        [second, '2026-03-02T10:00:00.000Z', '2026-03-02T15:00:00.000Z', 5, 3, -15],
      ]);
      assert.deepEqual(body.lines.filter((l) => l.kind === 'top-up').map((l) => [l.amount, l.description]), [[100, reason]]);
      assert.deepEqual(body.byInstance.sort((a, b) => Number(a.total) - Number(b.total)).map((i) => [i.instanceId, i.usageHours, i.total]), [[first, 5, -25], [second, 5, -15]]);
      const wallet = await call('GET', `/billing/wallets/${walletId}`, adminToken);
      assert.equal(wallet.body.balance, body.closingBalance, 'the closing balance at now is the balance');
    });

    it('answers RFC 4180 CSV on Accept: text/csv, with text a spreadsheet would run defused', async () => {
      const response = await fetch(`${server.url}/billing/wallets/${walletId}/statement?from=2026-03-02T10:30:00Z&to=2026-03-02T16:00:00Z`, {
        headers: { authorization: `Bearer ${adminToken}`, accept: 'text/csv' },
      });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/csv/);
      const text = await response.text();
      const records = text.split('\r\n');
      assert.equal(records[0], 'posted_at,kind,instance_id,instance_name,from,to,hours,hourly_rate,amount,balance,currency,description');
      assert.equal(records[1], '2026-03-02T10:30:00.000Z,opening-balance,,,,,,,,1000,EUR,');
      assert.match(text, /,usage,[0-9a-f-]{36},i-[0-9a-f]{8},2026-03-02T10:00:00.000Z,2026-03-02T15:00:00.000Z,5,5,-25,,EUR,\r\n/);
      // The reason: quoted (comma, quote, newline), its quotes doubled, led by ' so no formula runs.
      assert.ok(text.includes(`,top-up,,,,,,,100,,EUR,"'=HYPERLINK(""x""), a ""bonus""\nfor March"\r\n`), text);
      assert.equal(records.at(-2), '2026-03-02T16:00:00.000Z,closing-balance,,,,,,,,1060,EUR,');
      assert.equal(records.at(-1), '', 'the last record ends with CRLF too');
    });

    it('is 404 for another org and 422 for a period that is empty, backwards or longer than a year', async () => {
      assert.equal((await call('GET', `/billing/wallets/${walletId}/statement`, outsiderToken)).status, 404);
      for (const query of ['from=2026-03-02T12:00:00Z&to=2026-03-02T12:00:00Z', 'from=2026-03-03T00:00:00Z&to=2026-03-02T00:00:00Z', 'from=2025-01-01T00:00:00Z&to=2026-03-02T00:00:00Z']) {
        const reply = await call('GET', `/billing/wallets/${walletId}/statement?${query}`, adminToken);
        assert.equal(reply.status, 422, query);
        assert.equal(reply.body.code, 'invalid-period');
      }
      for (const query of ['from=yesterday', 'from=0000-01-01T00:00:00Z', 'to=2026-12-31T23:59:60Z']) {
        const reply = await call('GET', `/billing/wallets/${walletId}/statement?${query}`, adminToken);
        assert.equal(reply.status, 400, `${query}: ${JSON.stringify(reply.body)}`);
      }
    });
  });
});
