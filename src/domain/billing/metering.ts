import type { Transaction } from 'sequelize';
import { applyInstanceEvent } from '../instance-events.ts';
import { ensurePlatformAccount, ensureWallet, lockWallet, pendingHolds, postTransfers, select, toMinor, type LedgerDeps } from './ledger.ts';

const HOUR_MS = 3_600_000;

/**
 * Metered: the base branch holds the instance (what is on main is what runs), it has been ready
 * since the spec reached main (running_since), and its wallet has not suspended it.
 */
const METERED = `i.observed_state = 'present' AND i.running_since IS NOT NULL AND NOT i.suspended`;

export interface MeteringResult {
  /** Hours charged (or recorded at a zero rate) by this run. */
  hours: number;
  amount: bigint;
  /** Instances moved to `suspended` because their wallet could not pay an hour. */
  suspended: string[];
}

interface Candidate {
  id: string;
  organization_id: string;
  currency: string;
  hourly_rate_minor: string;
}

/**
 * Charges every running instance for each full clock hour it has run and not yet paid for.
 * An instance's first hour is the hour in which it (last) became ready; each completed hour
 * since then (or since its last metered hour) is charged now, so a run after downtime catches up,
 * and a second run for the same hour finds the row and charges nothing. Hours are charged
 * oldest first; when the wallet cannot pay one, the instance is suspended (wallet.exhausted)
 * and nothing more is charged for it. One transaction per instance.
 */
export async function meterUsage(deps: LedgerDeps): Promise<MeteringResult> {
  const now = deps.now();
  const candidates = await select<Candidate>(
    deps,
    undefined,
    `SELECT i.id, i.organization_id, v.currency, v.hourly_rate_minor
     FROM instances i JOIN offering_versions v ON v.id = i.offering_version_id
     WHERE ${METERED}
       -- Already paid up to the last full hour: nothing to do, no transaction to open.
       AND coalesce((SELECT max(m.hour) FROM metered_hours m WHERE m.instance_id = i.id), '-infinity') < :lastFullHour
     ORDER BY i.id`,
    { lastFullHour: new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - HOUR_MS) },
  );
  const result: MeteringResult = { hours: 0, amount: 0n, suspended: [] };
  for (const candidate of candidates) {
    const charged = await deps.sequelize.transaction((tx) => meterInstance(deps, tx, candidate, now));
    result.hours += charged.hours;
    result.amount += charged.amount;
    if (charged.suspended) result.suspended.push(candidate.id);
  }
  return result;
}

async function meterInstance(
  deps: LedgerDeps,
  tx: Transaction,
  instance: Candidate,
  now: Date,
): Promise<{ hours: number; amount: bigint; suspended: boolean }> {
  // The instance first, then the wallet: the order the lifecycle (applyInstanceEvent, then
  // settle/void) takes them in, so the two never deadlock.
  const [locked] = await select<{ metered: boolean; running_since: Date | null }>(
    deps,
    tx,
    `SELECT ${METERED} AS metered, i.running_since FROM instances i WHERE i.id = :id FOR UPDATE OF i`,
    { id: instance.id },
  );
  if (!locked || !locked.metered || !locked.running_since) {
    return { hours: 0, amount: 0n, suspended: false };
  }
  const firstHour = new Date(Math.floor(locked.running_since.getTime() / HOUR_MS) * HOUR_MS);
  const endOfLastFullHour = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS);
  const missing = await select<{ hour: Date }>(
    deps,
    tx,
    // From the later of the first hour of this running period and the hour after the last one
    // metered (a PK lookup), so a long-running instance costs one short series per run.
    `SELECT h.hour FROM generate_series(
       greatest(:firstHour::timestamptz, (SELECT max(hour) + interval '1 hour' FROM metered_hours WHERE instance_id = :id)),
       :lastHour::timestamptz, interval '1 hour') AS h(hour)
     WHERE NOT EXISTS (SELECT 1 FROM metered_hours m WHERE m.instance_id = :id AND m.hour = h.hour)
     ORDER BY h.hour`,
    { id: instance.id, firstHour, lastHour: new Date(endOfLastFullHour.getTime() - HOUR_MS) },
  );
  if (missing.length === 0) return { hours: 0, amount: 0n, suspended: false };

  const rate = toMinor(instance.hourly_rate_minor);
  const walletId = await ensureWallet(deps, tx, instance.organization_id, instance.currency);
  const wallet = await lockWallet(deps, tx, walletId);
  const available = wallet.balance - (await pendingHolds(deps, tx, walletId, now));
  const revenue = rate > 0n ? await ensurePlatformAccount(deps, tx, 'revenue', instance.currency) : undefined;
  // Oldest first, as many hours as the wallet can pay; the first unpaid hour suspends.
  const payable = rate === 0n ? missing.length : Number(BigInt(missing.length) < available / rate ? BigInt(missing.length) : available / rate);
  const paid = missing.slice(0, Math.max(payable, 0)).map((m) => m.hour);
  if (paid.length > 0) await chargeHours(deps, tx, { instanceId: instance.id, walletId, revenueId: revenue, currency: instance.currency, rate, hours: paid, now });
  const amount = BigInt(paid.length) * rate;
  const unpaid = missing[paid.length];
  if (!unpaid) return { hours: paid.length, amount, suspended: false };
  const left = available - amount;
  await applyInstanceEvent(deps.sequelize, tx, instance.id, 'wallet.exhausted', {
    cause: 'wallet.exhausted',
    actor: 'metering',
    detail: { walletId, currency: instance.currency, available: left.toString(), hourlyRate: rate.toString(), unpaidHour: unpaid.hour.toISOString() },
    lastError: `The ${instance.currency} wallet cannot pay the hour from ${unpaid.hour.toISOString()} (${rate} needed, ${left} available).`,
  });
  return { hours: paid.length, amount, suspended: true };
}

/**
 * Posts one usage transfer per hour (postTransfers: one statement whatever the count), then one
 * metered_hours row per hour naming its transfer: a day of catch-up for an instance is two round
 * trips, not seventy. The caller holds the instance's and the wallet's locks.
 */
async function chargeHours(
  deps: LedgerDeps,
  tx: Transaction,
  input: { instanceId: string; walletId: string; revenueId: string | undefined; currency: string; rate: bigint; hours: Date[]; now: Date },
): Promise<void> {
  const { revenueId } = input;
  // A free offering records the hours (so they are not looked at again) and moves no money.
  const transferIds =
    revenueId === undefined
      ? input.hours.map(() => null)
      : await postTransfers(
          deps,
          tx,
          input.hours.map((hour) => ({
            kind: 'usage' as const,
            currency: input.currency,
            debitAccountId: input.walletId,
            creditAccountId: revenueId,
            amount: input.rate,
            instanceId: input.instanceId,
            reason: `usage ${hour.toISOString().slice(0, 13)}:00Z`,
            actor: 'metering',
          })),
        );
  // The primary key (instance, hour) is the last word: a concurrent charge of the same hour
  // fails this statement, and the transaction with its transfers.
  await deps.sequelize.query(
    `INSERT INTO metered_hours (instance_id, hour, wallet_id, amount, transfer_id, created_at)
     SELECT :instanceId, h.hour, :walletId, :amount::bigint, h.transfer_id, :now
     FROM unnest(ARRAY[:hours]::timestamptz[], CAST(:transferIds AS uuid[])) AS h(hour, transfer_id)`,
    {
      transaction: tx,
      replacements: {
        instanceId: input.instanceId,
        walletId: input.walletId,
        amount: revenueId === undefined ? '0' : input.rate.toString(),
        hours: input.hours.map((h) => h.toISOString()),
        transferIds: `{${transferIds.map((id) => id ?? 'NULL').join(',')}}`,
        now: input.now,
      },
    },
  );
}
