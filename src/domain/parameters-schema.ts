import type { Ajv2020 } from 'ajv/dist/2020.js';
import { ValidationError } from '../errors.ts';
import { createAjv, toFieldErrors, type FieldError, type ValidateFunction } from '../validation.ts';

/**
 * What every offering version's parameters schema must be, so that `parameters` may always be
 * omitted and unknown fields are rejected: a JSON Schema 2020-12 object schema that ajv compiles,
 * with `additionalProperties: false` and a default for every property, and whose defaults
 * together are valid. Returns the problems, empty when the schema is acceptable.
 */
export function checkParametersSchema(schema: unknown): string[] {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return ['must be a JSON Schema object'];
  const s = schema as { type?: unknown; additionalProperties?: unknown; properties?: unknown };
  const problems: string[] = [];
  if (s.type !== 'object') problems.push('must have "type": "object"');
  if (s.additionalProperties !== false) problems.push('must have "additionalProperties": false');
  const properties = s.properties ?? {};
  if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
    problems.push('"properties" must be an object');
  } else {
    for (const [name, property] of Object.entries(properties as Record<string, unknown>)) {
      if (property === null || typeof property !== 'object' || !('default' in property)) problems.push(`property "${name}" must have a default`);
    }
  }
  if (problems.length > 0) return problems;
  let validate: ValidateFunction;
  try {
    validate = freshAjv().compile(schema as object);
  } catch (error) {
    return [`is not a valid JSON Schema: ${(error as Error).message}`];
  }
  const defaults = {};
  if (!validate(defaults)) problems.push(`its defaults are not valid against it: ${toFieldErrors('parameters', validate.errors).map((e) => `${e.pointer} ${e.message}`).join('; ')}`);
  return problems;
}

/**
 * Validates instance parameters against offering versions' schemas, filling defaults. Compiled
 * validators are kept per version id: a published version's schema never changes.
 * One per service (built by the composition root), not a module global.
 */
export class ParametersValidator {
  readonly #compiled = new Map<string, ValidateFunction>();

  /** Returns the parameters with defaults filled in; throws a 422 naming each bad field. */
  validate(version: { id: string; parametersSchema: object }, parameters: Record<string, unknown> | undefined): Record<string, unknown> {
    let validate = this.#compiled.get(version.id);
    if (!validate) {
      validate = freshAjv().compile(version.parametersSchema);
      this.#compiled.set(version.id, validate);
    }
    const filled = structuredClone(parameters ?? {});
    if (!validate(filled)) {
      const errors: FieldError[] = toFieldErrors('parameters', validate.errors);
      throw new ValidationError(errors, 'The parameters do not match the offering version\'s schema.', 422);
    }
    return filled;
  }
}

// One ajv per schema: admins' schemas may carry an $id, and two versions with the same $id
// must not collide in a shared instance.
export function freshAjv(): Ajv2020 {
  return createAjv({ useDefaults: true });
}
