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
