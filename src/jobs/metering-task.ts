import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { expireAuthorizations } from '../domain/billing/authorizations.ts';
import type { LedgerDeps } from '../domain/billing/ledger.ts';
import { meterUsage, type MeteringResult } from '../domain/billing/metering.ts';
import type { BackgroundTask } from './background-task.ts';
import { runAsLeader, type LeaderRun } from './leader-lock.ts';
import { createPeriodicTask } from './periodic-task.ts';

/** Arbitrary but fixed: every replica contends for it; the holder meters. */
export const METERING_LOCK_KEY = 0x6370_6d65; // "cpme"

export interface MeteringTaskDeps extends LedgerDeps {
  logger: Logger;
  metrics: Pick<Metrics, 'meteringRuns' | 'meteringHoursCharged' | 'meteringInstancesSuspended'>;
  intervalMs: number;
}

/** One metering pass, on the leader only: mark expired holds, then charge the missing hours. */
export async function runMetering(deps: LedgerDeps): Promise<LeaderRun<MeteringResult & { expiredHolds: number }>> {
  return runAsLeader(deps.sequelize, METERING_LOCK_KEY, async () => {
    const expired = await deps.sequelize.transaction((tx) => expireAuthorizations(deps, tx));
    return { ...(await meterUsage(deps)), expiredHolds: expired.length };
  });
}

export function createMeteringTask(deps: MeteringTaskDeps): BackgroundTask {
  return createPeriodicTask({
    name: 'metering',
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    run: async () => {
      const run = await runMetering(deps);
      deps.metrics.meteringRuns.inc({ role: run.leader ? 'leader' : 'follower' });
      if (run.leader) {
        deps.metrics.meteringHoursCharged.inc(run.result.hours);
        deps.metrics.meteringInstancesSuspended.inc(run.result.suspended.length);
      }
      if (run.leader && (run.result.hours > 0 || run.result.suspended.length > 0 || run.result.expiredHolds > 0)) {
        deps.logger.info(
          { hours: run.result.hours, amount: run.result.amount.toString(), suspended: run.result.suspended, expiredHolds: run.result.expiredHolds },
          'metering run',
        );
      }
    },
  });
}
