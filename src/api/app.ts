import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import type { Sequelize } from 'sequelize';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { AppError, MethodNotAllowedError, NotFoundError } from '../errors.ts';
import { PROBLEM_CONTENT_TYPE, toAppError, toProblem } from './problem.ts';
import type { Authenticate, RouteSpec } from './route.ts';
import { compileRoute } from './route-validation.ts';

export interface AppDeps {
  logger: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  routes: RouteSpec[];
  /** Required as soon as one route is not public. */
  authenticate?: Authenticate;
  /** Required by routes that open transactions or honour Idempotency-Key. */
  sequelize?: Sequelize;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the Koa application without listening, so tests drive it in-process. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa({ proxy: true });
  const router = new Router();

  for (const spec of deps.routes) {
    if (spec.access !== 'public' && !deps.authenticate) {
      throw new Error(`route ${spec.method.toUpperCase()} ${spec.path} needs authentication but no authenticate function was given`);
    }
    router[spec.method](spec.operationId, spec.path, compileRoute(spec, { authenticate: deps.authenticate, sequelize: deps.sequelize }));
  }

  app.use(async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = deps.logger.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    deps.metrics.httpRequestsInFlight.inc({ method: ctx.method });
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The matched route template keeps label cardinality bounded; unmatched paths share one label.
      const route = typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : 'unmatched';
      deps.metrics.httpRequestDuration.observe({ method: ctx.method, route, status_code: String(ctx.status) }, seconds);
      ctx.state.log.info({ method: ctx.method, path: ctx.path, route, status: ctx.status, ms: Math.round(seconds * 1000) }, 'request');
    }
  });

  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        const allowed = allowedMethods(router, ctx.path);
        throw allowed.length > 0 ? new MethodNotAllowedError(allowed) : new NotFoundError(`No route for ${ctx.method} ${ctx.path}.`);
      }
    } catch (thrown) {
      const error = toAppError(thrown) ?? new AppError(500, 'internal', 'Internal server error', { detail: 'The service failed to handle this request; it has been logged.', cause: thrown });
      if (error.status >= 500) ctx.state.log.error({ err: thrown }, 'request failed');
      ctx.status = error.status;
      ctx.set(error.headers);
      ctx.type = PROBLEM_CONTENT_TYPE;
      ctx.body = toProblem(error, ctx.state.requestId as string, ctx.path);
    }
  });

  const parser = (limit: number) => bodyParser({ enableTypes: ['json'], jsonLimit: limit, encoding: 'utf-8', extendTypes: { json: ['application/json', 'application/*+json'] } });
  const defaultParser = parser(deps.bodyLimitBytes);
  // Routes with a limit of their own (GitHub sends webhook payloads up to 25 MB) get their parser by path.
  const parsers = new Map<string, ReturnType<typeof parser>>();
  for (const spec of deps.routes) {
    if (spec.bodyLimitBytes === undefined) continue;
    if (spec.path.includes(':')) throw new Error(`route ${spec.method.toUpperCase()} ${spec.path}: a body limit of its own needs a static path`);
    parsers.set(spec.path, parser(Math.max(spec.bodyLimitBytes, deps.bodyLimitBytes)));
  }
  app.use((ctx, next) => (parsers.get(ctx.path) ?? defaultParser)(ctx, next));
  app.use(router.routes());
  return app;
}

function allowedMethods(router: Router, path: string): string[] {
  const methods = new Set<string>();
  for (const layer of router.match(path, 'GET').path) {
    for (const method of layer.methods) if (method !== 'HEAD') methods.add(method);
  }
  return [...methods].sort();
}
