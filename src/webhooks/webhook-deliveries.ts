import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { retryOnConflict } from '../db/transaction-retry.ts';

export type WebhookSource = 'github' | 'argocd' | 'saleor';

export interface DeliveryKey {
  source: WebhookSource;
  /** GitHub's X-GitHub-Delivery, or a key derived from an Argo CD notification or a Saleor body. */
  key: string;
  /** Event name, for operators reading the table. */
  event: string;
}

export type DeliveryResult<T> =
  | { duplicate: false; outcome: T }
  /** Already processed successfully: nothing was done; `outcome` is what the first run did. */
  | { duplicate: true; outcome: unknown };

interface DeliveryRow {
  processed_at: Date | null;
  outcome: unknown;
}

/**
 * Runs `effect` at most once per delivery. The delivery row is claimed, the effect applied and
 * the row marked processed in ONE transaction: a crash or an error rolls all three back, so
 * GitHub's redelivery (same id) is processed again, while a redelivery after success finds the
 * row processed and does nothing. Two copies arriving together serialise on the row's lock.
 * A transaction PostgreSQL aborts to break a deadlock (or a serialization failure) is run again.
 */
export async function processDelivery<T>(
  sequelize: Sequelize,
  delivery: DeliveryKey,
  effect: (transaction: Transaction) => Promise<T>,
): Promise<DeliveryResult<T>> {
  try {
    // A deadlock with another transaction (the worker, convergence, a second copy of the
    // delivery) rolls this one back whole: run it again rather than answer 500, which GitHub
    // does not redeliver by itself.
    return await retryOnConflict(() => sequelize.transaction(async (transaction): Promise<DeliveryResult<T>> => {
      const [row] = await sequelize.query<DeliveryRow>(
        `INSERT INTO webhook_deliveries (source, delivery_key, event) VALUES ($source, $key, $event)
         ON CONFLICT (source, delivery_key)
           DO UPDATE SET attempts = webhook_deliveries.attempts + 1, updated_at = now()
         RETURNING processed_at, outcome`,
        { bind: { ...delivery }, type: QueryTypes.SELECT, transaction },
      );
      if (row?.processed_at) return { duplicate: true, outcome: row.outcome };
      const outcome = await effect(transaction);
      await sequelize.query(
        `UPDATE webhook_deliveries SET processed_at = now(), outcome = $outcome, last_error = NULL, updated_at = now()
          WHERE source = $source AND delivery_key = $key`,
        { bind: { source: delivery.source, key: delivery.key, outcome: JSON.stringify(outcome ?? null) }, transaction },
      );
      return { duplicate: false, outcome };
    }));
  } catch (error) {
    await recordFailure(sequelize, delivery, error).catch(() => undefined);
    throw error;
  }
}

/** Keeps a trace of a failed attempt (the effect's transaction rolled back) for operators. */
async function recordFailure(sequelize: Sequelize, delivery: DeliveryKey, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await sequelize.query(
    `INSERT INTO webhook_deliveries (source, delivery_key, event, last_error) VALUES ($source, $key, $event, $message)
     ON CONFLICT (source, delivery_key) DO UPDATE
       SET attempts = webhook_deliveries.attempts + 1, last_error = $message, updated_at = now()
       WHERE webhook_deliveries.processed_at IS NULL`,
    { bind: { ...delivery, message: message.slice(0, 2000) } },
  );
}
