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
  return fc.oneof(
    { weight: 4, arbitrary: shaped },
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
