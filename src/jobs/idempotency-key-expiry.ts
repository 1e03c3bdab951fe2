import type { Sequelize } from 'sequelize';
import { deleteExpiredIdempotencyKeys } from '../db/idempotency-keys.ts';
import type { Logger } from '../logger.ts';
import type { BackgroundTask } from './background-task.ts';
import { createPeriodicTask } from './periodic-task.ts';

/** Hourly: drops Idempotency-Keys past their retention, so the table stays small. */
export function createIdempotencyKeyExpiryTask(deps: { sequelize: Sequelize; logger: Logger; retentionHours: number; intervalMs?: number }): BackgroundTask {
  return createPeriodicTask({
    name: 'idempotency-key-expiry',
    intervalMs: deps.intervalMs ?? 3_600_000,
    logger: deps.logger,
    run: async () => {
      const deleted = await deleteExpiredIdempotencyKeys(deps.sequelize, deps.retentionHours);
      if (deleted > 0) deps.logger.info({ deleted }, 'expired idempotency keys deleted');
    },
  });
}
