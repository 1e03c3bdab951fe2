import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { LedgerDeps } from '../domain/billing/ledger.ts';
import { select, toMinor } from '../domain/billing/ledger.ts';
import { assessOrder, type CreditProduct, type SaleorOrder } from '../domain/billing/saleor-order.ts';
import { applySaleorOrder, countSaleorOutcome } from '../domain/billing/saleor-top-ups.ts';
import { retryOnConflict } from '../db/transaction-retry.ts';
import type { BackgroundTask } from './background-task.ts';
import { runAsLeader, type LeaderRun } from './leader-lock.ts';
import { createPeriodicTask } from './periodic-task.ts';
import type { SaleorOrderReader } from './saleor-orders.ts';

/** Arbitrary but fixed: every replica contends for it; the holder reconciles. */
export const SALEOR_RECONCILE_LOCK_KEY = 0x6370_736c; // "cpsl"

export type MismatchKind = 'missing-credit' | 'missing-refund' | 'unmatched' | 'credit-without-paid-order' | 'amount-differs';

export interface SaleorMismatch {
  kind: MismatchKind;
  orderId: string;
  orderNumber: string;
  /** Whether the reconciler put it right (missing credits and refunds); the others are for a person. */
  repaired: boolean;
}

export interface SaleorReconcileResult {
  from: Date;
  to: Date;
  /** Orders Saleor returned for the window that buy credit and are paid. */
  paidCreditOrders: number;
  mismatches: SaleorMismatch[];
  /** Orders that could not be applied (e.g. a credit past the balance limit); the others still were. */
  failures: { orderId: string; orderNumber: string; error: string }[];
}

export interface SaleorReconcileDeps extends LedgerDeps {
  orders: SaleorOrderReader;
  product: CreditProduct;
  metrics?: Pick<Metrics, 'saleorOrders' | 'saleorRefundShortfall' | 'saleorReconcileMismatches'>;
}

const DAY_MS = 24 * 3600 * 1000;

/** Yesterday and today so far (UTC): a late webhook, or one lost near midnight, is still looked at. */
export function reconcileWindow(now: Date): { from: Date; to: Date } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return { from: new Date(today - DAY_MS), to: now };
}

/**
 * Compares the orders Saleor reports for the window with the credits recorded here. Every paid
 * credit order goes through applySaleorOrder (exactly-once per order and refund, like a webhook),
 * so a credit or refund a lost webhook missed is applied now; what cannot be put right that way
 * (a credit whose order Saleor no longer reports as paid, a credit of another amount, an order
 * naming no known org) is reported.
 */
export async function reconcileSaleorOrders(deps: SaleorReconcileDeps, window = reconcileWindow(deps.now())): Promise<SaleorReconcileResult> {
  const mismatches: SaleorMismatch[] = [];
  const failures: SaleorReconcileResult['failures'] = [];
  const report = (kind: MismatchKind, order: { id: string; number: string }, repaired: boolean) => {
    mismatches.push({ kind, orderId: order.id, orderNumber: order.number, repaired });
    deps.metrics?.saleorReconcileMismatches.inc({ kind });
  };
  const seen = await deps.orders.list({ updatedAt: { gte: window.from.toISOString(), lte: window.to.toISOString() } });
  const paid = new Set<string>();
  for (const order of seen) {
    const assessment = assessOrder(order, deps.product);
    if (assessment.kind !== 'credit') continue;
    paid.add(order.id);
    let outcome: Awaited<ReturnType<typeof applySaleorOrder>>;
    try {
      outcome = await retryOnConflict(() => deps.sequelize.transaction((tx) => applySaleorOrder(deps, tx, { order, product: deps.product })));
    } catch (error) {
      // One order the ledger refuses must not keep the others from being looked at.
      failures.push({ orderId: order.id, orderNumber: order.number, error: error instanceof Error ? error.message : String(error) });
      continue;
    }
    if (deps.metrics) countSaleorOutcome(deps.metrics, outcome, 'reconciler');
    if (outcome.result === 'credited') report('missing-credit', order, true);
    if (outcome.result === 'unmatched') report('unmatched', order, false);
    if (outcome.refund && outcome.refund.due > 0) report('missing-refund', order, true);
    if (outcome.result === 'already-credited') {
      const [row] = await select<{ credit_minor: string }>(deps, undefined, `SELECT credit_minor FROM saleor_orders WHERE saleor_order_id = :id`, { id: order.id });
      if (row && toMinor(row.credit_minor) !== assessment.credit) report('amount-differs', order, false);
    }
  }

  // Credits recorded in the window whose order was not among the paid ones: ask Saleor for them by id.
  const credited = await select<{ saleor_order_id: string; order_number: string }>(
    deps,
    undefined,
    `SELECT saleor_order_id, order_number FROM saleor_orders WHERE status = 'credited' AND created_at >= :from AND created_at <= :to ORDER BY created_at`,
    { from: window.from, to: window.to },
  );
  const unseen = credited.filter((row) => !paid.has(row.saleor_order_id));
  for (let i = 0; i < unseen.length; i += 100) {
    const chunk = unseen.slice(i, i + 100);
    const found = new Map<string, SaleorOrder>((await deps.orders.list({ ids: chunk.map((row) => row.saleor_order_id) })).map((order) => [order.id, order]));
    for (const row of chunk) {
      const order = found.get(row.saleor_order_id);
      if (!order || assessOrder(order, deps.product).kind !== 'credit') report('credit-without-paid-order', { id: row.saleor_order_id, number: row.order_number }, false);
    }
  }
  return { ...window, paidCreditOrders: paid.size, mismatches, failures };
}

export function runSaleorReconcile(deps: SaleorReconcileDeps): Promise<LeaderRun<SaleorReconcileResult>> {
  return runAsLeader(deps.sequelize, SALEOR_RECONCILE_LOCK_KEY, () => reconcileSaleorOrders(deps));
}

export function createSaleorReconcileTask(
  deps: SaleorReconcileDeps & { logger: Logger; intervalMs: number; metrics: Pick<Metrics, 'saleorOrders' | 'saleorRefundShortfall' | 'saleorReconcileMismatches' | 'saleorReconcileRuns'> },
): BackgroundTask {
  return createPeriodicTask({
    name: 'saleor-reconcile',
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    run: async () => {
      let run: LeaderRun<SaleorReconcileResult>;
      try {
        run = await runSaleorReconcile(deps);
      } catch (error) {
        deps.metrics.saleorReconcileRuns.inc({ role: 'failed' });
        throw error;
      }
      deps.metrics.saleorReconcileRuns.inc({ role: run.leader ? 'leader' : 'follower' });
      if (run.leader && (run.result.mismatches.length > 0 || run.result.failures.length > 0)) {
        const { from, to, paidCreditOrders, mismatches, failures } = run.result;
        deps.logger.warn({ from, to, paidCreditOrders, mismatches, failures }, 'Saleor orders and credits differed');
      }
    },
  });
}
