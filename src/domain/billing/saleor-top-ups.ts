import type { Transaction } from 'sequelize';
import { ValidationError } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';
import { creditWallet } from './credits.ts';
import { ensurePlatformAccount, ensureWallet, isUuid, lockWallet, pendingHolds, postTransfer, select, toMinor, type LedgerDeps } from './ledger.ts';
import { assessOrder, refundDue, type CreditProduct, type SaleorOrder } from './saleor-order.ts';

export type UnmatchedReason = 'missing-org-metadata' | 'unknown-org';

/** What one look at an order did; stored as a delivery's outcome, so JSON numbers (minor units). */
export interface SaleorOrderOutcome {
  orderId: string;
  orderNumber: string;
  result: 'no-credit' | 'not-paid' | 'unmatched' | 'credited' | 'already-credited';
  unmatchedReason?: UnmatchedReason;
  organizationId?: string;
  /** Minor units credited by this call (0 when it credited nothing). */
  credited: number;
  currency?: string;
  /** Set when this call took back credit for a refund. */
  refund?: { due: number; debited: number; shortfall: number };
}

/** saleor_orders_total and saleor_refund_shortfall_minor_total for one applied order. */
export function countSaleorOutcome(metrics: Partial<Pick<Metrics, 'saleorOrders' | 'saleorRefundShortfall'>>, outcome: SaleorOrderOutcome, via: 'webhook' | 'reconciler'): void {
  if (outcome.result === 'credited') metrics.saleorOrders?.inc({ outcome: 'credited', via });
  if (outcome.result === 'unmatched') metrics.saleorOrders?.inc({ outcome: 'unmatched', via });
  if (outcome.refund) metrics.saleorOrders?.inc({ outcome: 'refunded', via });
  if (outcome.result === 'already-credited' && !outcome.refund) metrics.saleorOrders?.inc({ outcome: 'unchanged', via });
  if (outcome.refund?.shortfall && outcome.currency) metrics.saleorRefundShortfall?.inc({ currency: outcome.currency }, outcome.refund.shortfall);
}

interface OrderRow {
  status: 'credited' | 'unmatched';
  organization_id: string | null;
  wallet_id: string | null;
  currency: string;
  credit_minor: string;
  paid_minor: string;
  debited_minor: string;
  shortfall_minor: string;
}

const ACTOR = 'saleor';

/**
 * Brings the wallet in line with one Saleor order, exactly once per order and per refund state,
 * whoever calls (the webhook receiver, the reconciler, two copies of one delivery at once):
 * a transaction-level advisory lock per order serialises them, and the order's row (keyed by
 * Saleor's id) says what was done before. A paid credit order is credited once; an order naming
 * no known organization is recorded as unmatched (credited later, once its metadata names one);
 * a refund takes back its pro-rata share once, at most what the wallet has available (balance −
 * pending holds): the rest is recorded as a shortfall for a platform admin.
 */
export async function applySaleorOrder(
  deps: LedgerDeps,
  tx: Transaction,
  input: { order: SaleorOrder; product: CreditProduct; deliveryKey?: string },
): Promise<SaleorOrderOutcome> {
  const { order, product } = input;
  const base = { orderId: order.id, orderNumber: order.number, credited: 0 };
  const assessment = assessOrder(order, product);
  if (assessment.kind !== 'credit') return { ...base, result: assessment.kind };

  await deps.sequelize.query(`SELECT pg_advisory_xact_lock(hashtextextended('saleor-order:' || :id, 0))`, { transaction: tx, replacements: { id: order.id } });
  const organizationId = await findOrganization(deps, tx, assessment.orgReference);
  const [existing] = await select<OrderRow>(
    deps,
    tx,
    `SELECT status, organization_id, wallet_id, currency, credit_minor, paid_minor, debited_minor, shortfall_minor FROM saleor_orders WHERE saleor_order_id = :id`,
    { id: order.id },
  );
  const now = deps.now();
  const orgReference = assessment.orgReference?.slice(0, 200) ?? null;

  if (existing?.status !== 'credited') {
    if (!organizationId) {
      const reason: UnmatchedReason = assessment.orgReference === undefined ? 'missing-org-metadata' : 'unknown-org';
      await deps.sequelize.query(
        `INSERT INTO saleor_orders (saleor_order_id, order_number, status, unmatched_reason, org_reference, currency, credit_minor, order_currency, paid_minor, delivery_key, created_at, updated_at)
         VALUES (:id, :number, 'unmatched', :reason, :orgReference, :currency, :credit, :orderCurrency, :paid, :deliveryKey, :now, :now)
         ON CONFLICT (saleor_order_id) DO UPDATE SET unmatched_reason = EXCLUDED.unmatched_reason, org_reference = EXCLUDED.org_reference, updated_at = EXCLUDED.updated_at`,
        {
          transaction: tx,
          replacements: {
            id: order.id,
            number: order.number,
            reason,
            orgReference,
            currency: product.currency,
            credit: assessment.credit.toString(),
            orderCurrency: assessment.orderCurrency,
            paid: assessment.paid.toString(),
            deliveryKey: input.deliveryKey ?? null,
            now,
          },
        },
      );
      return { ...base, result: 'unmatched', unmatchedReason: reason };
    }
    const walletId = await ensureWallet(deps, tx, organizationId, product.currency);
    const credit = await creditWallet(deps, tx, { walletId, amount: assessment.credit, reason: `Saleor order #${order.number} (${order.id})`, actor: ACTOR });
    await deps.sequelize.query(
      `INSERT INTO saleor_orders (saleor_order_id, order_number, status, org_reference, organization_id, wallet_id, currency, credit_minor, credit_transfer_id, order_currency, paid_minor, delivery_key, created_at, updated_at)
       VALUES (:id, :number, 'credited', :orgReference, :organizationId, :walletId, :currency, :credit, :transferId, :orderCurrency, :paid, :deliveryKey, :now, :now)
       ON CONFLICT (saleor_order_id) DO UPDATE SET status = 'credited', unmatched_reason = NULL, org_reference = EXCLUDED.org_reference,
         organization_id = EXCLUDED.organization_id, wallet_id = EXCLUDED.wallet_id, currency = EXCLUDED.currency, credit_minor = EXCLUDED.credit_minor,
         credit_transfer_id = EXCLUDED.credit_transfer_id, order_currency = EXCLUDED.order_currency, paid_minor = EXCLUDED.paid_minor, updated_at = EXCLUDED.updated_at`,
      {
        transaction: tx,
        replacements: {
          id: order.id,
          number: order.number,
          orgReference,
          organizationId,
          walletId,
          currency: product.currency,
          credit: assessment.credit.toString(),
          transferId: credit.transferId!,
          orderCurrency: assessment.orderCurrency,
          paid: assessment.paid.toString(),
          deliveryKey: input.deliveryKey ?? null,
          now,
        },
      },
    );
    const refund = await takeBackRefund(deps, tx, order, { walletId, currency: product.currency, credit: assessment.credit, paid: assessment.paid, taken: 0n }, assessment.refunded, input.deliveryKey);
    return { ...base, result: 'credited', organizationId, credited: Number(assessment.credit), currency: product.currency, ...(refund ? { refund } : {}) };
  }

  const refund = await takeBackRefund(
    deps,
    tx,
    order,
    {
      walletId: existing.wallet_id!,
      currency: existing.currency,
      credit: toMinor(existing.credit_minor),
      paid: toMinor(existing.paid_minor),
      taken: toMinor(existing.debited_minor) + toMinor(existing.shortfall_minor),
    },
    assessment.refunded,
    input.deliveryKey,
  );
  return { ...base, result: 'already-credited', organizationId: existing.organization_id!, currency: existing.currency, ...(refund ? { refund } : {}) };
}

async function findOrganization(deps: LedgerDeps, tx: Transaction, reference: string | undefined): Promise<string | undefined> {
  if (reference === undefined || !isUuid(reference)) return undefined;
  const [row] = await select<{ id: string }>(deps, tx, `SELECT id FROM organizations WHERE id = :reference`, { reference });
  return row?.id;
}

/**
 * Takes back what a refund state owes, once: a refund row per (order, Saleor's totalRefunded),
 * and nothing for a state no later than one already seen (a redelivery, or an older event
 * arriving after a newer one).
 */
async function takeBackRefund(
  deps: LedgerDeps,
  tx: Transaction,
  order: SaleorOrder,
  credited: { walletId: string; currency: string; credit: bigint; paid: bigint; taken: bigint },
  refunded: bigint,
  deliveryKey: string | undefined,
): Promise<SaleorOrderOutcome['refund']> {
  if (refunded <= 0n) return undefined;
  const [seen] = await select<{ latest: string | null }>(deps, tx, `SELECT max(refunded_total_minor) AS latest FROM saleor_refunds WHERE saleor_order_id = :id`, { id: order.id });
  if (toMinor(seen?.latest) >= refunded) return undefined;
  const due = refundDue(credited.credit, credited.paid, refunded) - credited.taken;
  const owed = due > 0n ? due : 0n;
  const wallet = await lockWallet(deps, tx, credited.walletId);
  const available = wallet.balance - (await pendingHolds(deps, tx, wallet.id, deps.now()));
  const debited = owed < available ? owed : available > 0n ? available : 0n;
  let transferId: string | undefined;
  if (debited > 0n) {
    const topUps = await ensurePlatformAccount(deps, tx, 'top-ups', credited.currency);
    transferId = await postTransfer(deps, tx, {
      kind: 'top-up',
      currency: credited.currency,
      debitAccountId: wallet.id,
      creditAccountId: topUps,
      amount: debited,
      reason: `Saleor refund of order #${order.number} (${order.id})`,
      actor: ACTOR,
    });
  }
  const shortfall = owed - debited;
  await deps.sequelize.query(
    `INSERT INTO saleor_refunds (saleor_order_id, refunded_total_minor, due_minor, debited_minor, shortfall_minor, transfer_id, delivery_key, created_at)
     VALUES (:id, :refunded, :due, :debited, :shortfall, :transferId, :deliveryKey, :now)`,
    {
      transaction: tx,
      replacements: {
        id: order.id,
        refunded: refunded.toString(),
        due: owed.toString(),
        debited: debited.toString(),
        shortfall: shortfall.toString(),
        transferId: transferId ?? null,
        deliveryKey: deliveryKey ?? null,
        now: deps.now(),
      },
    },
  );
  await deps.sequelize.query(
    `UPDATE saleor_orders SET debited_minor = debited_minor + :debited, shortfall_minor = shortfall_minor + :shortfall, updated_at = :now WHERE saleor_order_id = :id`,
    { transaction: tx, replacements: { id: order.id, debited: debited.toString(), shortfall: shortfall.toString(), now: deps.now() } },
  );
  return { due: Number(owed), debited: Number(debited), shortfall: Number(shortfall) };
}

export interface SaleorOrderRecord {
  orderId: string;
  orderNumber: string;
  status: 'credited' | 'unmatched';
  unmatchedReason: UnmatchedReason | null;
  orgReference: string | null;
  organizationId: string | null;
  walletId: string | null;
  currency: string;
  credit: bigint;
  debited: bigint;
  shortfall: bigint;
  createdAt: Date;
  updatedAt: Date;
}

/** The Saleor orders recorded here, newest first; what a platform admin reads (unmatched ones, shortfalls). */
export async function listSaleorOrders(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  filter: { status?: 'credited' | 'unmatched'; createdFrom?: Date; createdBefore?: Date; limit: number; cursor?: string },
): Promise<{ items: SaleorOrderRecord[]; nextCursor: string | null }> {
  const cursor = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor);
  const rows = await select<{
    saleor_order_id: string;
    order_number: string;
    status: 'credited' | 'unmatched';
    unmatched_reason: UnmatchedReason | null;
    org_reference: string | null;
    organization_id: string | null;
    wallet_id: string | null;
    currency: string;
    credit_minor: string;
    debited_minor: string;
    shortfall_minor: string;
    created_at: Date;
    updated_at: Date;
  }>(
    deps,
    tx,
    `SELECT * FROM saleor_orders
     WHERE (:status::text IS NULL OR status = :status)
       AND (:from::timestamptz IS NULL OR created_at >= :from) AND (:before::timestamptz IS NULL OR created_at < :before)
       AND (:cursorAt::timestamptz IS NULL OR (created_at, saleor_order_id) < (:cursorAt::timestamptz, :cursorId::text))
     ORDER BY created_at DESC, saleor_order_id DESC LIMIT :limit`,
    {
      status: filter.status ?? null,
      from: filter.createdFrom ?? null,
      before: filter.createdBefore ?? null,
      cursorAt: cursor?.at ?? null,
      cursorId: cursor?.id ?? null,
      limit: filter.limit + 1,
    },
  );
  const items = rows.slice(0, filter.limit).map((row) => ({
    orderId: row.saleor_order_id,
    orderNumber: row.order_number,
    status: row.status,
    unmatchedReason: row.unmatched_reason,
    orgReference: row.org_reference,
    organizationId: row.organization_id,
    walletId: row.wallet_id,
    currency: row.currency,
    credit: toMinor(row.credit_minor),
    debited: toMinor(row.debited_minor),
    shortfall: toMinor(row.shortfall_minor),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }));
  const last = items.at(-1);
  return { items, nextCursor: rows.length > filter.limit && last ? Buffer.from(JSON.stringify([last.createdAt.toISOString(), last.orderId])).toString('base64url') : null };
}

function decodeCursor(cursor: string): { at: string; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof at === 'string' && !Number.isNaN(Date.parse(at)) && typeof id === 'string') return { at, id };
  } catch {
    // fall through
  }
  throw new ValidationError([{ in: 'query', pointer: '/cursor', message: 'is not a cursor from this list' }]);
}
