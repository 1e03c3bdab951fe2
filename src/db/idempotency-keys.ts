import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';

// The owner of `idempotency_keys`: the only SQL that reads or writes it.

export interface IdempotencyKeyId {
  /** Keys are scoped per caller: two callers may use the same key. */
  principal: string;
  key: string;
}

export interface IdempotencyKeyClaim extends IdempotencyKeyId {
  method: string;
  path: string;
  /** Hash of method, path and canonical body: the same key with another request is refused. */
  requestHash: string;
}

export interface IdempotencyKeyRow {
  request_hash: string;
  response_status: number | null;
  response_body: unknown;
}

/**
 * Inserts the key's row in `tx`; false when the row exists. The primary-key insert is the lock:
 * a concurrent duplicate's INSERT blocks on the first one's uncommitted row until it commits
 * (then this returns false) or rolls back (then this inserts and returns true).
 */
export async function claimIdempotencyKey(
  sequelize: Sequelize,
  tx: Transaction,
  claim: IdempotencyKeyClaim,
): Promise<boolean> {
  const claimed = await sequelize.query(
    `INSERT INTO idempotency_keys (principal, key, method, path, request_hash)
     VALUES (:principal, :key, :method, :path, :hash)
     ON CONFLICT (principal, key) DO NOTHING RETURNING key`,
    {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: { principal: claim.principal, key: claim.key, method: claim.method, path: claim.path, hash: claim.requestHash },
    },
  );
  return claimed.length > 0;
}

export async function findIdempotencyKey(
  sequelize: Sequelize,
  tx: Transaction,
  id: IdempotencyKeyId,
): Promise<IdempotencyKeyRow | undefined> {
  const [stored] = await sequelize.query<IdempotencyKeyRow>(
    'SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE principal = :principal AND key = :key',
    { type: QueryTypes.SELECT, transaction: tx, replacements: { principal: id.principal, key: id.key } },
  );
  return stored;
}

/** Stores the response of a claimed key, in the transaction that made the request's writes. */
export async function completeIdempotencyKey(
  sequelize: Sequelize,
  tx: Transaction,
  id: IdempotencyKeyId,
  response: { status: number; body: unknown },
): Promise<void> {
  await sequelize.query(
    `UPDATE idempotency_keys SET response_status = :status, response_body = :body, completed_at = now()
     WHERE principal = :principal AND key = :key`,
    {
      type: QueryTypes.UPDATE,
      transaction: tx,
      replacements: {
        principal: id.principal,
        key: id.key,
        status: response.status,
        body: response.body === undefined ? null : JSON.stringify(response.body),
      },
    },
  );
}

/**
 * Forgets keys older than `retentionHours` (a key then executes again), a batch at a time so a
 * large backlog never holds long locks. Safe to run on every replica at once.
 */
export async function deleteExpiredIdempotencyKeys(sequelize: Sequelize, retentionHours: number, batchSize = 5_000): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await sequelize.query(
      `DELETE FROM idempotency_keys WHERE ctid IN (
         SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => :hours) LIMIT :batch
         FOR UPDATE SKIP LOCKED)
       RETURNING 1`,
      { type: QueryTypes.SELECT, replacements: { hours: retentionHours, batch: batchSize } },
    );
    total += deleted.length;
    if (deleted.length < batchSize) return total;
  }
}
