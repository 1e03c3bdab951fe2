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

/**
 * `timestamptz::text` as PostgreSQL writes it with DateStyle ISO (the default):
 * `2026-12-06 21:36:56.123456+00`, an offset of hours, optionally minutes and seconds.
 */
const PG_TIMESTAMPTZ = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?[+-](\d{2})(?::(\d{2})(?::(\d{2}))?)?$/;

/**
 * Whether PostgreSQL reads `text` back as the timestamp it wrote: the shape above, and every
 * field within its range (no year 0, no 30 February, no hour 24, offsets within ±15:59:59).
 * Date.parse alone let "1" and "2026-02-30 …" through, which PostgreSQL refuses (a 500).
 */
function isPostgresTimestamp(text: string): boolean {
  const match = PG_TIMESTAMPTZ.exec(text);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const [offsetHours, offsetMinutes, offsetSeconds] = [match[8], match[9], match[10]].map((v) => Number(v ?? 0)) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  date.setUTCFullYear(year); // Date.UTC maps years 0-99 to 1900-1999
  return (
    year >= 1 &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHours <= 15 &&
    offsetMinutes <= 59 &&
    offsetSeconds <= 59
  );
}

/** The (createdAt text, id) of a cursor this service issued; anything else is a 400 on `?cursor`. */
export function decodePageCursor(cursor: string): { cursorAt: string; cursorId: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && isPostgresTimestamp(value[0]) && typeof value[1] === 'string' && UUID.test(value[1])) {
      return { cursorAt: value[0], cursorId: value[1] };
    }
  } catch {
    // fall through: not base64url JSON
  }
  throw new ValidationError([{ in: 'query', pointer: '/cursor', message: 'is not a cursor this service issued' }]);
}
