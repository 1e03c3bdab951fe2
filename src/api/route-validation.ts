import type { Context, Middleware } from 'koa';
import type { TSchema } from '@sinclair/typebox';
import type { Sequelize, Transaction } from 'sequelize';
import { UnsupportedMediaTypeError, ValidationError } from '../errors.ts';
import { createAjv, toFieldErrors, unstorableInput, type FieldError, type ValidateFunction } from '../validation.ts';
import type { Authenticate, RouteInput, RouteSpec } from './route.ts';
import { idempotencyKeyOf, runIdempotently } from './idempotency.ts';
import type { Principal } from '../domain/principal.ts';

// Path and query values arrive as strings: coerce them ("20" → 20). Bodies are JSON and are
// checked strictly: a string where a number belongs is an error, not a guess.
const coercing = createAjv({ coerceTypes: true });
const strict = createAjv();

function compile(ajv: typeof strict, schema: TSchema | undefined): ValidateFunction | undefined {
  return schema ? ajv.compile(schema) : undefined;
}

export interface RouteRuntime {
  authenticate?: Authenticate;
  /** Needed by routes that open transactions or honour Idempotency-Key. */
  sequelize?: Sequelize;
}

/**
 * Turns a RouteSpec into the one chain every route runs:
 * authenticate → validate path, query, body → (idempotency) → handler.
 */
export function compileRoute(spec: RouteSpec, runtime: RouteRuntime): Middleware {
  const { authenticate, sequelize } = runtime;
  if (spec.idempotent && !sequelize) throw new Error(`route ${spec.method.toUpperCase()} ${spec.path} is idempotent but no database was given`);
  const validateParams = compile(coercing, spec.params);
  const validateQuery = compile(coercing, spec.query);
  const validateBody = compile(strict, spec.body);
  const queryNames = new Set(Object.keys((spec.query as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}));

  return async (ctx: Context) => {
    if (spec.access !== 'public') await authenticate!(ctx, spec.access);

    const params: Record<string, unknown> = { ...ctx.params };
    const query: Record<string, unknown> = { ...ctx.query };
    // Before any schema: Ajv and everything after it would walk (or store) what cannot be.
    const unstorable = unstorableInput('path', params) ?? unstorableInput('query', query) ?? (validateBody ? unstorableInput('body', ctx.request.body) : undefined);
    if (unstorable) throw new ValidationError([unstorable]);
    const errors: FieldError[] = [];
    if (validateParams && !validateParams(params)) errors.push(...toFieldErrors('path', validateParams.errors));
    if (validateQuery && !validateQuery(query)) errors.push(...toFieldErrors('query', validateQuery.errors));
    // A parameter the route does not know is refused, as unknown body fields are: ignored, a
    // `?dryRun=true` would propose (and bill) what the caller meant only to try.
    for (const name of Object.keys(ctx.query)) {
      const pointer = `/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      // A schema with additionalProperties: false has said so already.
      if (!queryNames.has(name) && !errors.some((e) => e.in === 'query' && e.pointer === pointer)) {
        errors.push({ in: 'query', pointer, message: `${name} is not a query parameter of this route` });
      }
    }

    let body: unknown = undefined;
    if (validateBody) {
      if (!ctx.request.is('application/json', 'application/*+json')) {
        throw new UnsupportedMediaTypeError('Send the body as application/json.');
      }
      body = ctx.request.body;
      if (!validateBody(body)) errors.push(...toFieldErrors('body', validateBody.errors));
    }
    // A dry run writes nothing, so there is nothing to replay: its answer is never stored under a key.
    const key = spec.idempotent && query.dryRun !== true ? idempotencyKeyOf(ctx) : undefined;
    if (errors.length > 0) throw new ValidationError(errors);

    const principal = ctx.state.principal as Principal | undefined;
    const newTransaction = <T>(work: (tx: Transaction) => Promise<T>): Promise<T> => {
      if (!sequelize) throw new Error(`route ${spec.method.toUpperCase()} ${spec.path} needs a database but none was given`);
      return sequelize.transaction(work);
    };
    if (key === undefined || !principal) {
      await spec.handler({ ctx, params, query, body, transaction: newTransaction } as RouteInput<never, never, never>);
      return;
    }
    await runIdempotently(sequelize!, ctx, { principal: principal.subject, key, method: ctx.method, path: ctx.path, body }, async (tx) => {
      const transaction = <T>(work: (tx: Transaction) => Promise<T>): Promise<T> => work(tx);
      await spec.handler({ ctx, params, query, body, transaction } as RouteInput<never, never, never>);
    });
  };
}
