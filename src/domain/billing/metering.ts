import type { Transaction } from 'sequelize';
import { applyInstanceEvent } from '../instance-events.ts';
import { ensurePlatformAccount, ensureWallet, lockWallet, pendingHolds, postTransfer, select, toMinor, type LedgerDeps } from './ledger.ts';

const HOUR_MS = 3_600_000;

/** States in which an instance runs and is charged by the hour. */
const METERED_STATES = ['ready', 'degraded'] as const;

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
 * since then without a metered_hours row is charged now, so a run after downtime catches up,
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
     WHERE i.state IN (:states) ORDER BY i.id`,
    { states: METERED_STATES },
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
  const [locked] = await select<{ state: string; running_since: Date | null }>(
    deps,
    tx,
    `SELECT i.state,
       (SELECT max(e.created_at) FROM instance_events e
        WHERE e.instance_id = i.id AND e.to_state = 'ready' AND (e.from_state IS NULL OR e.from_state NOT IN (:states))) AS running_since
     FROM instances i WHERE i.id = :id FOR UPDATE OF i`,
    { id: instance.id, states: METERED_STATES },
  );
  if (!locked || !(METERED_STATES as readonly string[]).includes(locked.state) || !locked.running_since) {
    return { hours: 0, amount: 0n, suspended: false };
  }
  const firstHour = new Date(Math.floor(locked.running_since.getTime() / HOUR_MS) * HOUR_MS);
  const endOfLastFullHour = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS);
  const missing = await select<{ hour: Date }>(
    deps,
    tx,
    `SELECT h.hour FROM generate_series(:firstHour::timestamptz, :lastHour::timestamptz, interval '1 hour') AS h(hour)
     WHERE NOT EXISTS (SELECT 1 FROM metered_hours m WHERE m.instance_id = :id AND m.hour = h.hour)
     ORDER BY h.hour`,
    { id: instance.id, firstHour, lastHour: new Date(endOfLastFullHour.getTime() - HOUR_MS) },
  );
  if (missing.length === 0) return { hours: 0, amount: 0n, suspended: false };

  const rate = toMinor(instance.hourly_rate_minor);
  const walletId = await ensureWallet(deps, tx, instance.organization_id, instance.currency);
  const wallet = await lockWallet(deps, tx, walletId);
  let available = wallet.balance - (await pendingHolds(deps, tx, walletId, now));
  const revenue = rate > 0n ? await ensurePlatformAccount(deps, tx, 'revenue', instance.currency) : undefined;
  let hours = 0;
  for (const { hour } of missing) {
    if (available < rate) {
      await applyInstanceEvent(deps.sequelize, tx, instance.id, 'wallet.exhausted', {
        cause: 'wallet.exhausted',
        actor: 'metering',
        detail: { walletId, currency: instance.currency, available: available.toString(), hourlyRate: rate.toString(), unpaidHour: hour.toISOString() },
        lastError: `The ${instance.currency} wallet cannot pay the hour from ${hour.toISOString()} (${rate} needed, ${available} available).`,
      });
      return { hours, amount: BigInt(hours) * rate, suspended: true };
    }
    const transferId =
      revenue === undefined
        ? undefined
        : await postTransfer(deps, tx, {
            kind: 'usage',
            currency: instance.currency,
            debitAccountId: walletId,
            creditAccountId: revenue,
            amount: rate,
            instanceId: instance.id,
            reason: `usage ${hour.toISOString()}`,
            actor: 'metering',
          });
    // The primary key (instance, hour) is the last word: a concurrent charge of the same hour
    // fails here and rolls its transfer back with it.
    await deps.sequelize.query(
      `INSERT INTO metered_hours (instance_id, hour, wallet_id, amount, transfer_id, created_at)
       VALUES (:id, :hour, :walletId, :amount::bigint, :transferId, :now)`,
      { transaction: tx, replacements: { id: instance.id, hour, walletId, amount: rate.toString(), transferId: transferId ?? null, now } },
    );
    available -= rate;
    hours += 1;
  }
  return { hours, amount: BigInt(hours) * rate, suspended: false };
}
