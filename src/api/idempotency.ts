import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Sequelize, Transaction } from 'sequelize';
import { claimIdempotencyKey, completeIdempotencyKey, findIdempotencyKey } from '../db/idempotency-keys.ts';
import { UnprocessableError, ValidationError } from '../errors.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
const KEY = /^[\x21-\x7e]{1,255}$/;

export interface IdempotentRequest {
  /** Keys are scoped per caller: two callers may use the same key. */
  principal: string;
  key: string;
  method: string;
  path: string;
  body: unknown;
}

/** The Idempotency-Key of a request, or undefined; a malformed key is a 400. */
export function idempotencyKeyOf(ctx: Context): string | undefined {
  const key = ctx.get(IDEMPOTENCY_HEADER);
  if (key === '') return undefined;
  if (!KEY.test(key)) {
    throw new ValidationError([{ in: 'header', pointer: `/${IDEMPOTENCY_HEADER}`, message: 'must be 1 to 255 printable ASCII characters' }]);
  }
  return key;
}

/**
 * Runs `execute` at most once per (principal, key), in ONE transaction with the key's row:
 * the route's own writes and the stored response commit together or not at all.
 *
 * The primary-key insert is the lock. A concurrent duplicate's INSERT blocks on the first
 * one's uncommitted row; when the first commits, ON CONFLICT DO NOTHING yields nothing and the
 * duplicate replays the stored response; when it rolls back (an error response), the duplicate
 * inserts and executes itself. Error responses are therefore not stored: a retry re-executes.
 */
export async function runIdempotently(
  sequelize: Sequelize,
  ctx: Context,
  request: IdempotentRequest,
  execute: (tx: Transaction) => Promise<void>,
): Promise<void> {
  const hash = requestHash(request);
  await sequelize.transaction(async (tx) => {
    const id = { principal: request.principal, key: request.key };
    const claim = { ...id, method: request.method, path: request.path, requestHash: hash };
    if (!(await claimIdempotencyKey(sequelize, tx, claim))) {
      const stored = await findIdempotencyKey(sequelize, tx, id);
      if (!stored || stored.request_hash !== hash) {
        throw new UnprocessableError('idempotency-key-reused', `This ${IDEMPOTENCY_HEADER} was used for a different request; use a new key for a new request.`);
      }
      ctx.status = stored.response_status ?? 200;
      ctx.body = stored.response_body ?? undefined;
      ctx.set('Idempotent-Replayed', 'true');
      return;
    }
    await execute(tx);
    await completeIdempotencyKey(sequelize, tx, id, { status: ctx.status, body: ctx.body });
  });
}

function requestHash(request: IdempotentRequest): string {
  return createHash('sha256')
    .update(`${request.method.toUpperCase()} ${request.path}\n${canonicalJson(request.body ?? null)}`)
    .digest('hex');
}

/** JSON with object keys sorted, so the same body hashes the same whatever its key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
