import type { Context, Middleware } from 'koa';
import type { TSchema } from '@sinclair/typebox';
import { UnsupportedMediaTypeError, ValidationError } from '../errors.ts';
import { createAjv, toFieldErrors, type FieldError, type ValidateFunction } from '../validation.ts';
import type { Authenticate } from './app.ts';
import type { RouteSpec } from './route.ts';

// Path and query values arrive as strings: coerce them ("20" → 20). Bodies are JSON and are
// checked strictly: a string where a number belongs is an error, not a guess.
const coercing = createAjv({ coerceTypes: true });
const strict = createAjv();

function compile(ajv: typeof strict, schema: TSchema | undefined): ValidateFunction | undefined {
  return schema ? ajv.compile(schema) : undefined;
}

/**
 * Turns a RouteSpec into the one chain every route runs:
 * authenticate → validate path, query, body → handler.
 */
export function compileRoute(spec: RouteSpec, authenticate: Authenticate | undefined): Middleware {
  const validateParams = compile(coercing, spec.params);
  const validateQuery = compile(coercing, spec.query);
  const validateBody = compile(strict, spec.body);

  return async (ctx: Context) => {
    if (spec.access !== 'public') await authenticate!(ctx, spec.access);

    const params: Record<string, unknown> = { ...ctx.params };
    const query: Record<string, unknown> = { ...ctx.query };
    const errors: FieldError[] = [];
    if (validateParams && !validateParams(params)) errors.push(...toFieldErrors('path', validateParams.errors));
    if (validateQuery && !validateQuery(query)) errors.push(...toFieldErrors('query', validateQuery.errors));

    let body: unknown = undefined;
    if (validateBody) {
      if (!ctx.request.is('application/json', 'application/*+json')) {
        throw new UnsupportedMediaTypeError('Send the body as application/json.');
      }
      body = ctx.request.body;
      if (!validateBody(body)) errors.push(...toFieldErrors('body', validateBody.errors));
    }
    if (errors.length > 0) throw new ValidationError(errors);

    await spec.handler({ ctx, params, query, body } as Parameters<RouteSpec['handler']>[0]);
  };
}
