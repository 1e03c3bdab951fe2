import { QueryTypes, type Sequelize } from 'sequelize';

export type LeaderRun<T> = { leader: true; result: T } | { leader: false };

/**
 * Runs `work` only if this replica takes the transaction-level advisory lock `lockKey`; another
 * replica holding it makes this a no-op. The lock lives in a transaction of its own that stays
 * open while `work` runs (in transactions of its own), and is released when that transaction
 * ends, also when the process dies: the next tick of any replica takes over.
 */
export async function runAsLeader<T>(sequelize: Sequelize, lockKey: number, work: () => Promise<T>): Promise<LeaderRun<T>> {
  return sequelize.transaction(async (tx): Promise<LeaderRun<T>> => {
    const [row] = await sequelize.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock(:lockKey) AS locked', {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: { lockKey },
    });
    if (!row?.locked) return { leader: false };
    return { leader: true, result: await work() };
  });
}
