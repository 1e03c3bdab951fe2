import type { Static, TSchema } from '@sinclair/typebox';
import type { Context } from 'koa';
import type { Transaction } from 'sequelize';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ResponseSpec {
  description: string;
  /** JSON body schema; omit for empty bodies or non-JSON responses. */
  schema?: TSchema;
  /** Defaults to application/json when a schema is given. */
  contentType?: string;
}

/** Who may call a route. `public` routes skip authentication entirely. */
export type RouteAccess = 'public' | 'authenticated' | 'platform-admin' | 'webhook';

/** Authenticates a request for a route's access level; sets ctx.state.principal or throws 401/403. */
export type Authenticate = (ctx: Context, access: Exclude<RouteAccess, 'public'>) => Promise<void>;

type StaticOr<T, Fallback> = T extends TSchema ? Static<T> : Fallback;

export interface RouteInput<P, Q, B> {
  ctx: Context;
  params: P;
  query: Q;
  body: B;
  /**
   * Runs `work` in the request's unit of work. On an idempotent route called with an
   * Idempotency-Key it is the transaction that also stores the response (so writes and the
   * stored response commit together); otherwise a new transaction.
   */
  transaction: <T>(work: (tx: Transaction) => Promise<T>) => Promise<T>;
}

/**
 * One HTTP operation, described once. The router validates requests with these schemas and
 * `/openapi.json` is generated from the same objects, so the document cannot drift from what
 * the service accepts.
 */
export interface RouteSpec<
  PSchema extends TSchema | undefined = TSchema | undefined,
  QSchema extends TSchema | undefined = TSchema | undefined,
  BSchema extends TSchema | undefined = TSchema | undefined,
> {
  method: HttpMethod;
  /** Koa path, e.g. `/instances/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  access: RouteAccess;
  params?: PSchema;
  query?: QSchema;
  body?: BSchema;
  /** Whether the route honours an Idempotency-Key header (documented in OpenAPI). */
  idempotent?: boolean;
  /** A body limit of its own, above BODY_LIMIT_BYTES (a static path only): what a sender documents it may send. */
  bodyLimitBytes?: number;
  responses: Record<number, ResponseSpec>;
  handler: (
    input: RouteInput<StaticOr<PSchema, Record<string, string>>, StaticOr<QSchema, Record<string, unknown>>, StaticOr<BSchema, undefined>>,
  ) => Promise<void> | void;
}

/** Identity function that keeps each route's schema types for its handler. */
export function defineRoute<
  P extends TSchema | undefined = undefined,
  Q extends TSchema | undefined = undefined,
  B extends TSchema | undefined = undefined,
>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}
