import { ValidationError } from '../errors.ts';

/**
 * Keyset pagination over (created_at, id), newest first, with a cursor that is opaque to
 * clients. The timestamp travels as PostgreSQL's own text (`created_at::text`): a JS Date keeps
 * milliseconds only, and rows within the lost microseconds would be skipped at a page boundary.
 *
 * Use: select `created_at::text AS cursor_at`, filter with
 * `(created_at, id) < (CAST(:cursorAt AS timestamptz), CAST(:cursorId AS uuid))`,
 * order by `created_at DESC, id DESC`, fetch limit + 1 rows.
 */
export function encodePageCursor(createdAtText: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAtText, id]), 'utf8').toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The (createdAt text, id) of a cursor this service issued; anything else is a 400 on `?cursor`. */
export function decodePageCursor(cursor: string): { cursorAt: string; cursorId: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && !Number.isNaN(Date.parse(value[0])) && typeof value[1] === 'string' && UUID.test(value[1])) {
      return { cursorAt: value[0], cursorId: value[1] };
    }
  } catch {
    // fall through: not base64url JSON
  }
  throw new ValidationError([{ in: 'query', pointer: '/cursor', message: 'is not a cursor this service issued' }]);
}
