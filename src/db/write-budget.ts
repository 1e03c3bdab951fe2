import { QueryTypes, type Sequelize } from 'sequelize';

/**
 * A token bucket in PostgreSQL, one row per GitHub identity (github_write_budget), so that
 * every replica spends from the same budget. The caller's clock is passed in (`now`, ms): the
 * bucket refills `perMs` tokens a millisecond up to `capacity`, and a take succeeds only when
 * the bucket holds `cost` tokens, in one statement (no lost update between replicas).
 */
export interface BucketShape {
  key: string;
  capacity: number;
  perMs: number;
}

export interface BucketState {
  /** Tokens after the take (or, when nothing was taken, now). */
  tokens: number;
  taken: boolean;
}

const REFILLED = 'LEAST(:capacity, b.tokens + GREATEST(0, :now - b.refilled_at_ms) * :perMs)';

export async function takeTokens(sequelize: Sequelize, bucket: BucketShape, cost: number, now: number): Promise<BucketState> {
  const replacements = { ...bucket, cost, now };
  const [taken] = await sequelize.query<{ tokens: number }>(
    `INSERT INTO github_write_budget AS b (key, tokens, refilled_at_ms) VALUES (:key, :capacity - :cost, :now)
     ON CONFLICT (key) DO UPDATE SET tokens = ${REFILLED} - :cost, refilled_at_ms = GREATEST(b.refilled_at_ms, :now)
       WHERE ${REFILLED} >= :cost
     RETURNING tokens`,
    { type: QueryTypes.SELECT, replacements },
  );
  if (taken) return { tokens: Number(taken.tokens), taken: true };
  return { tokens: await peekTokens(sequelize, bucket, now), taken: false };
}

/** Spends `cost` tokens whether the bucket holds them or not (requests already sent): it may go below zero. */
export async function spendTokens(sequelize: Sequelize, bucket: BucketShape, cost: number, now: number): Promise<void> {
  await sequelize.query(
    `INSERT INTO github_write_budget AS b (key, tokens, refilled_at_ms) VALUES (:key, :capacity - :cost, :now)
     ON CONFLICT (key) DO UPDATE SET tokens = ${REFILLED} - :cost, refilled_at_ms = GREATEST(b.refilled_at_ms, :now)`,
    { type: QueryTypes.INSERT, replacements: { ...bucket, cost, now } },
  );
}

/** The tokens the bucket holds at `now` (a full bucket when it was never used). */
export async function peekTokens(sequelize: Sequelize, bucket: BucketShape, now: number): Promise<number> {
  const [row] = await sequelize.query<{ tokens: number }>(`SELECT ${REFILLED} AS tokens FROM github_write_budget b WHERE key = :key`, {
    type: QueryTypes.SELECT,
    replacements: { ...bucket, now },
  });
  return row ? Number(row.tokens) : bucket.capacity;
}
