/**
 * PostgreSQL's answers that mean "this transaction lost a race, run it again": a deadlock
 * (40P01: PostgreSQL aborted one of the waiters) and a serialization failure (40001). Both are
 * rolled back whole, so running the transaction again is safe (PostgreSQL docs, "Serialization
 * Failure Handling": "applications ... should retry").
 */
const RETRYABLE = new Set(['40P01', '40001']);

export function isRetryableConflict(error: unknown): boolean {
  const code = (error as { parent?: { code?: unknown }; original?: { code?: unknown }; code?: unknown } | null)?.parent?.code ??
    (error as { original?: { code?: unknown } } | null)?.original?.code ??
    (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE.has(code);
}

/**
 * Runs `attempt` (which opens and commits its own transaction) again when it loses such a race,
 * up to `attempts` times in all, after a short random pause that grows with each try, so the
 * two losers do not meet again at once. Any other error, or the last conflict, is thrown.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, options: { attempts?: number; baseDelayMs?: number; onRetry?: (error: unknown, tried: number) => void } = {}): Promise<T> {
  const attempts = options.attempts ?? 4;
  const base = options.baseDelayMs ?? 20;
  for (let tried = 1; ; tried += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (tried >= attempts || !isRetryableConflict(error)) throw error;
      options.onRetry?.(error, tried);
      await new Promise((resolve) => setTimeout(resolve, base * tried * (0.5 + Math.random())));
    }
  }
}
