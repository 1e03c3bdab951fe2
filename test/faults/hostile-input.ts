import fc from 'fast-check';
import type { JsonSchema } from '../support/openapi-operations.ts';

/**
 * Strings that have broken services like this one: path traversal in every spelling, YAML
 * that tries to open a second document or a new key, template and shell syntax, SQL, Unicode
 * that looks like ASCII or flips direction, lone surrogates, NUL, and very long values.
 */
export const NASTY_STRINGS = [
  '../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e/%2e%2e/',
  '..\\..\\windows',
  '/tenants/other-org/',
  'tenants/../platform',
  'a/../../b',
  'ok\nkind: Secret',
  'x: 1\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen',
  '"quoted": yes',
  '!!python/object/apply:os.system ["id"]',
  '&anchor [*anchor, *anchor]',
  '{{ .Values.secret }}',
  '${HOME}',
  '$(id)',
  '`id`',
  "'; DROP TABLE instances; --",
  '<script>alert(1)</script>',
  'a\u0000b',
  '\u202egnp.exe',
  'ｏｒｇ',
  'İstanbul',
  'ǆ',
  '\ud800',
  '🦄🦄',
  'e\u0301',
  '\u200b',
  ' studio',
  'STUDIO',
  '',
  ' ',
  'x'.repeat(5_000),
  '-1',
  '1e309',
  'NaN',
  'true',
  'null',
  '__proto__',
  'constructor',
];

export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('studio', 'rag', 'default', 'main'), fc.constantFrom(...NASTY_STRINGS)).map(([a, b]) => a + b) },
);

/** Any JSON value of a type other than the one asked for, or a hostile string. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -1, 0, 2 ** 63),
  fc.boolean(),
  fc.constant(null),
  fc.array(nastyString, { maxLength: 3 }),
  fc.dictionary(nastyString, nastyString, { maxKeys: 3 }),
);

/**
 * A value nested `depth` objects deep, standing in a body until jsonText writes it out
 * (JSON.stringify itself overflows the stack at such depths).
 */
export class NestedJson {
  readonly depth: number;
  constructor(depth: number) {
    this.depth = depth;
  }
}

/** Nesting far past what the service reads (64), up to where structuredClone and recursive JSON walks overflowed. */
export const deepValue: fc.Arbitrary<NestedJson> = fc.integer({ min: 65, max: 20_000 }).map((depth) => new NestedJson(depth));

/** JSON text of a body; a NestedJson anywhere in it becomes `{"a":{"a":…{}…}}` or `[[…[]…]]`. */
export function jsonText(body: unknown): string | undefined {
  const deep: NestedJson[] = [];
  const text = JSON.stringify(body, (_key, value: unknown) => (value instanceof NestedJson ? `\u0001nested${deep.push(value) - 1}\u0001` : value));
  return text?.replace(/"\\u0001nested(\d+)\\u0001"/g, (_, index: string) => {
    const { depth } = deep[Number(index)]!;
    return depth % 2 === 0 ? `${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`;
  });
}

/** `value` with a NUL character in every string and every key, however deep (PostgreSQL stores neither). */
export function withNul(value: unknown): unknown {
  if (typeof value === 'string') return `${value}\u0000`;
  if (Array.isArray(value)) return value.map(withNul);
  if (value && typeof value === 'object' && !(value instanceof NestedJson)) {
    return Object.fromEntries(Object.entries(value).map(([k, v], i) => [i % 2 === 0 ? `${k}\u0000` : k, withNul(v)]));
  }
  return value;
}

/**
 * Page cursors as this service shapes them (base64url JSON `[createdAt text, uuid]`) with dates
 * JavaScript's Date.parse takes and PostgreSQL refuses, or nothing like a date at all.
 */
export const forgedCursor: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('1', '0000-01-01 00:00:00+00', '2026-13-01 00:00:00+00', '2026-02-30 00:00:00+00', '2026-01-01 24:00:01+00', 'Jan 1 10000', '+275760-09-13', '2026-01-01 00:00:00+99', '2026-01-01T00:00:00Z', 'infinity'),
      nastyString,
      fc.date({ noInvalidDate: true }).map((d) => d.toString()),
    ),
    fc.oneof(fc.uuid(), nastyString),
  )
  .map((pair) => Buffer.from(JSON.stringify(pair), 'utf8').toString('base64url'));

/**
 * Bodies shaped like the operation's schema (its property names) with hostile values, plus
 * arbitrary JSON and prototype-pollution attempts. Strings for known properties are hostile
 * too, so every string the service reads gets traversal and YAML injection.
 */
export function hostileBody(schema: JsonSchema | undefined): fc.Arbitrary<unknown> {
  const names = Object.keys(schema?.properties ?? {});
  const shaped =
    names.length === 0
      ? fc.dictionary(nastyString, wrongValue, { maxKeys: 4 })
      : fc.record(Object.fromEntries(names.map((name) => [name, wrongValue])), { requiredKeys: [] });
  const deepShaped = names.length === 0 ? deepValue : fc.record(Object.fromEntries(names.map((name) => [name, fc.oneof(wrongValue, deepValue)])), { requiredKeys: [] });
  return fc.oneof(
    { weight: 4, arbitrary: shaped },
    { weight: 1, arbitrary: shaped.map(withNul) },
    { weight: 1, arbitrary: deepShaped },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constant(JSON.parse('{"__proto__":{"platformAdmin":true},"constructor":{"prototype":{"admin":true}}}')) },
  );
}

/** Raw texts that are not the JSON object the route expects. */
export const MALFORMED_BODIES: { label: string; body: string; contentType: string }[] = [
  { label: 'truncated JSON', body: '{"name": "a', contentType: 'application/json' },
  { label: 'trailing garbage', body: '{"a":1} x', contentType: 'application/json' },
  { label: 'single quotes', body: "{'a':1}", contentType: 'application/json' },
  { label: 'NUL byte', body: '\u0000', contentType: 'application/json' },
  { label: 'lone surrogate in a string', body: '{"name":"\\ud800"}', contentType: 'application/json' },
  { label: 'JSON null', body: 'null', contentType: 'application/json' },
  { label: 'JSON array', body: '[]', contentType: 'application/json' },
  { label: 'JSON string', body: '"x"', contentType: 'application/json' },
  { label: 'deep nesting', body: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, contentType: 'application/json' },
  { label: 'YAML body', body: 'name: x\n---\nkind: Secret\n', contentType: 'application/yaml' },
  { label: 'form body', body: 'name=x&org=..%2F..', contentType: 'application/x-www-form-urlencoded' },
  { label: 'plain text', body: 'hello', contentType: 'text/plain' },
  { label: 'body over the limit', body: `{"name":"${'x'.repeat(1_100_000)}"}`, contentType: 'application/json' },
];

/**
 * A value the schema accepts (as far as its keywords go: types, patterns, bounds, enums, uuid
 * and date-time formats, required properties), so a hostile class put into it meets the code
 * behind validation rather than validation alone.
 */
export function validValue(schema: JsonSchema | undefined): fc.Arbitrary<unknown> {
  if (!schema) return fc.constant('x');
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return fc.oneof(...union.map(validValue));
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'string': {
      if (schema.format === 'uuid') return fc.uuid();
      if (schema.format === 'date-time') return fc.date({ noInvalidDate: true, min: new Date('2000-01-01'), max: new Date('2100-01-01') }).map((d) => d.toISOString());
      const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
      const max = typeof schema.maxLength === 'number' ? schema.maxLength : Number.POSITIVE_INFINITY;
      if (typeof schema.pattern === 'string') return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= min && s.length <= max);
      return fc.string({ minLength: min, maxLength: Math.min(max, min + 20) });
    }
    case 'integer':
    case 'number': {
      const min = typeof schema.minimum === 'number' ? schema.minimum : 0;
      const max = typeof schema.maximum === 'number' ? schema.maximum : min + 1000;
      return fc.integer({ min: Math.ceil(min), max: Math.floor(Math.min(max, Number.MAX_SAFE_INTEGER)) });
    }
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(validValue(schema.items), { minLength: typeof schema.minItems === 'number' ? schema.minItems : 0, maxLength: 2 });
    case 'object': {
      const properties = schema.properties ?? {};
      const required = schema.required ?? [];
      return fc.record(Object.fromEntries(Object.entries(properties).map(([name, s]) => [name, validValue(s)])), { requiredKeys: required.filter((name) => name in properties) });
    }
    default:
      return fc.constant('x');
  }
}

/** A body the schema accepts, with one hostile class in it: NUL in every string, or one field nested past the limit. */
export function validBodyWith(schema: JsonSchema, hostility: 'nul' | 'deep'): fc.Arbitrary<unknown> {
  const names = Object.keys(schema.properties ?? {});
  if (hostility === 'nul') return validValue(schema).map(withNul).filter((body) => JSON.stringify(body)?.includes('\\u0000') === true);
  return fc.tuple(validValue(schema), names.length ? fc.constantFrom(...names) : fc.constant('x'), deepValue).map(([body, name, deep]) => ({ ...(body as Record<string, unknown>), [name]: deep }));
}
