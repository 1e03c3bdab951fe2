import type { Transaction } from 'sequelize';
import { UnprocessableError } from '../../errors.ts';
import { MAX_MINOR, select, toMinor, type LedgerDeps } from './ledger.ts';

/** The longest period one statement covers: a year of hourly usage stays one quick query. */
export const MAX_STATEMENT_DAYS = 366;

export type StatementLine =
  | {
      kind: 'usage';
      /** When the first of these hours was charged. */
      postedAt: Date;
      instanceId: string;
      instanceName: string | null;
      /** The hours charged, [from, to): consecutive hours at one rate make one line. */
      from: Date;
      to: Date;
      hours: number;
      hourlyRate: bigint;
      /** Negative: the wallet paid. */
      amount: bigint;
    }
  | {
      kind: 'top-up' | 'trial-credit' | 'capture';
      postedAt: Date;
      /** A setup fee's instance; null for credits. */
      instanceId: string | null;
      instanceName: string | null;
      amount: bigint;
      description: string | null;
    };

export interface InstanceSubtotal {
  instanceId: string;
  instanceName: string | null;
  setupFees: bigint;
  usageHours: number;
  usage: bigint;
  /** setupFees + usage, negative. */
  total: bigint;
}

export interface Statement {
  walletId: string;
  currency: string;
  from: Date;
  to: Date;
  /** Sum of the wallet's entries posted before `from`. */
  openingBalance: bigint;
  credits: bigint;
  debits: bigint;
  /** openingBalance + credits + debits: the sum of the entries posted before `to`. */
  closingBalance: bigint;
  /** In the order they were posted. */
  lines: StatementLine[];
  byInstance: InstanceSubtotal[];
}

interface LineRow {
  kind: 'usage' | 'top-up' | 'trial-credit' | 'capture';
  posted_at: Date;
  instance_id: string | null;
  instance_name: string | null;
  first_hour: Date | null;
  end_hour: Date | null;
  hours: number | null;
  rate: string | null;
  amount: string;
  description: string | null;
}

/**
 * What a wallet's owner reads: the balance at `from`, what was posted in [from, to) with the
 * hours of each instance folded into ranges (consecutive hours at one rate are one line), a
 * subtotal per instance, and the balance at `to`. Entries count at the moment they were posted
 * (an hour charged late, after an outage, is in the statement of the day it was charged).
 */
export async function walletStatement(deps: LedgerDeps, tx: Transaction | undefined, wallet: { id: string; currency: string }, period: { from: Date; to: Date }): Promise<Statement> {
  const { from, to } = period;
  if (!(from.getTime() < to.getTime())) throw new UnprocessableError('invalid-period', '`from` must be before `to`.');
  if (to.getTime() - from.getTime() > MAX_STATEMENT_DAYS * 86_400_000) {
    throw new UnprocessableError('invalid-period', `A statement covers at most ${MAX_STATEMENT_DAYS} days; ask for several.`, { extensions: { maxDays: MAX_STATEMENT_DAYS } });
  }
  const [opening] = await select<{ balance: string | null }>(
    deps,
    tx,
    `SELECT sum(amount) AS balance FROM ledger_entries WHERE account_id = :walletId AND created_at < :from`,
    { walletId: wallet.id, from },
  );
  const rows = await select<LineRow>(
    deps,
    tx,
    // Gaps and islands: an instance's hours at one rate minus their rank are equal exactly
    // while they are consecutive.
    `WITH e AS (
       SELECT e.id, e.amount, e.created_at, t.kind, t.instance_id, t.reason, m.hour
       FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id
       LEFT JOIN metered_hours m ON m.transfer_id = t.id
       WHERE e.account_id = :walletId AND e.created_at >= :from AND e.created_at < :to
     ), usage AS (
       SELECT instance_id, amount, created_at, id, hour,
              hour - row_number() OVER (PARTITION BY instance_id, amount ORDER BY hour) * interval '1 hour' AS island
       FROM e WHERE kind = 'usage' AND hour IS NOT NULL
     ), lines AS (
       SELECT 'usage' AS kind, min(created_at) AS posted_at, min(id) AS first_id, instance_id, min(hour) AS first_hour,
              max(hour) + interval '1 hour' AS end_hour, count(*)::int AS hours, -amount AS rate, sum(amount) AS amount, NULL AS description
       FROM usage GROUP BY instance_id, amount, island
       UNION ALL
       SELECT kind, created_at, id, instance_id, NULL, NULL, NULL, NULL, amount, reason
       FROM e WHERE NOT (kind = 'usage' AND hour IS NOT NULL)
     )
     SELECT l.kind, l.posted_at, l.instance_id, i.name AS instance_name, l.first_hour, l.end_hour, l.hours, l.rate, l.amount, l.description
     FROM lines l LEFT JOIN instances i ON i.id = l.instance_id
     ORDER BY l.first_id`,
    { walletId: wallet.id, from, to },
  );
  const lines = rows.map(toLine);
  const openingBalance = toMinor(opening?.balance);
  const credits = lines.reduce((sum, line) => (line.amount > 0n ? sum + line.amount : sum), 0n);
  const debits = lines.reduce((sum, line) => (line.amount < 0n ? sum + line.amount : sum), 0n);
  const statement: Statement = {
    walletId: wallet.id,
    currency: wallet.currency,
    from,
    to,
    openingBalance,
    credits,
    debits,
    closingBalance: openingBalance + credits + debits,
    lines,
    byInstance: subtotals(lines),
  };
  // Every number a statement shows is a JSON number: a period whose totals pass 2^53 − 1 is
  // refused rather than shown wrong (a shorter one fits).
  if ([credits, -debits, ...statement.byInstance.map((s) => -s.total)].some((amount) => amount > MAX_MINOR)) {
    throw new UnprocessableError('statement-out-of-range', `The period's totals pass ${MAX_MINOR} minor units; ask for a shorter period.`);
  }
  return statement;
}

function toLine(row: LineRow): StatementLine {
  const base = { postedAt: row.posted_at, instanceName: row.instance_name, amount: toMinor(row.amount) };
  if (row.kind === 'usage') {
    return { ...base, kind: 'usage', instanceId: row.instance_id!, from: row.first_hour!, to: row.end_hour!, hours: row.hours!, hourlyRate: toMinor(row.rate) };
  }
  return { ...base, kind: row.kind, instanceId: row.instance_id, description: row.description };
}

function subtotals(lines: StatementLine[]): InstanceSubtotal[] {
  const byInstance = new Map<string, InstanceSubtotal>();
  for (const line of lines) {
    if (line.instanceId === null) continue;
    const subtotal = byInstance.get(line.instanceId) ?? { instanceId: line.instanceId, instanceName: line.instanceName, setupFees: 0n, usageHours: 0, usage: 0n, total: 0n };
    if (line.kind === 'usage') {
      subtotal.usageHours += line.hours;
      subtotal.usage += line.amount;
    } else {
      subtotal.setupFees += line.amount;
    }
    subtotal.total += line.amount;
    byInstance.set(line.instanceId, subtotal);
  }
  return [...byInstance.values()];
}
