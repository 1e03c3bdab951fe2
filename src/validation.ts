import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with a default export; under nodenext the callable sits on .default.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export interface FieldError {
  /** Where the bad value came from. */
  in: 'body' | 'query' | 'path' | 'header' | 'env' | 'parameters';
  /** RFC 6901 JSON Pointer to the bad value within that part ('' is the whole part). */
  pointer: string;
  message: string;
}

/**
 * One place that builds ajv instances, so every schema in the service (request bodies,
 * query strings, config, offering parameters) is checked by the same dialect: JSON Schema
 * 2020-12, which is also the dialect of OpenAPI 3.1.
 */
export function createAjv(options: { coerceTypes?: boolean; useDefaults?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: false,
    coerceTypes: options.coerceTypes ?? false,
    useDefaults: options.useDefaults ?? true,
  });
  addFormats(ajv);
  return ajv;
}

export function toFieldErrors(where: FieldError['in'], errors: ErrorObject[] | null | undefined): FieldError[] {
  return (errors ?? []).map((error) => {
    let pointer = error.instancePath;
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'additionalProperties') {
      const extra = String((error.params as { additionalProperty?: unknown }).additionalProperty);
      pointer = `${pointer}/${escapePointer(extra)}`;
      message = 'is not an allowed field';
    } else if (error.keyword === 'required') {
      const missing = String((error.params as { missingProperty?: unknown }).missingProperty);
      pointer = `${pointer}/${escapePointer(missing)}`;
      message = 'is required';
    }
    return { in: where, pointer, message };
  });
}

function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

export type { ValidateFunction };

/** Deeper than any body this service documents (a JSON Schema in an offering version nests ~10). */
export const MAX_INPUT_DEPTH = 64;

/**
 * What no input may hold, whatever its schema says, found without recursion (so a hostile
 * depth cannot overflow this walk either): a NUL character in a string or a key (PostgreSQL's
 * text and jsonb cannot store U+0000), and nesting deeper than MAX_INPUT_DEPTH (structuredClone,
 * canonical JSON and Ajv all recurse). The first offence only: one is enough to refuse.
 */
export function unstorableInput(where: FieldError['in'], value: unknown): FieldError | undefined {
  const stack: [unknown, string, number][] = [[value, '', 0]];
  while (stack.length > 0) {
    const [current, pointer, depth] = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) return { in: where, pointer, message: 'contains a NUL character (U+0000), which no field accepts' };
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    if (depth >= MAX_INPUT_DEPTH) return { in: where, pointer, message: `is nested deeper than ${MAX_INPUT_DEPTH} levels` };
    for (const [key, item] of Object.entries(current)) {
      const at = `${pointer}/${escapePointer(key)}`;
      if (key.includes('\u0000')) return { in: where, pointer: at, message: 'has a name with a NUL character (U+0000), which no field accepts' };
      stack.push([item, at, depth + 1]);
    }
  }
  return undefined;
}
