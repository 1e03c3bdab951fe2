import { Type } from '@sinclair/typebox';
import type { Metrics } from '../../metrics.ts';
import { ServiceUnavailableError } from '../../errors.ts';
import { buildOpenApiDocument, type OpenApiInfo } from '../openapi.ts';
import { renderDocsPage } from '../docs-page.ts';
import { defineRoute, type RouteSpec } from '../route.ts';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface SystemRouteDeps {
  metrics: Metrics;
  readiness: ReadinessCheck[];
  /** True once SIGTERM arrived: /readyz then fails so load balancers stop sending traffic. */
  isDraining(): boolean;
  info: OpenApiInfo;
  /** Every route of the app, this module's included; read when the document is first asked for. */
  allRoutes(): RouteSpec[];
}

const ReadyBody = Type.Object({
  status: Type.Literal('ok'),
  checks: Type.Record(Type.String(), Type.Literal('ok')),
});

export function systemRoutes(deps: SystemRouteDeps): RouteSpec[] {
  let document: Record<string, unknown> | undefined;
  let docsPage: string | undefined;
  const openApi = () => (document ??= buildOpenApiDocument(deps.allRoutes(), deps.info));

  return [
    defineRoute({
      method: 'get',
      path: '/healthz',
      operationId: 'getHealth',
      summary: 'Liveness: the process is up and serving HTTP.',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'The process is up.', schema: Type.Object({ status: Type.Literal('ok') }) } },
      handler: ({ ctx }) => {
        ctx.body = { status: 'ok' };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/readyz',
      operationId: 'getReadiness',
      summary: 'Readiness: the database and the GitOps repository answer.',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'Ready to serve.', schema: ReadyBody }, 503: { description: 'A dependency is down, or the service is shutting down.' } },
      handler: async ({ ctx }) => {
        if (deps.isDraining()) throw new ServiceUnavailableError('The service is shutting down.');
        const results = await Promise.allSettled(deps.readiness.map((r) => r.check()));
        const failed = results.flatMap((result, i) =>
          result.status === 'rejected' ? [{ name: deps.readiness[i]!.name, reason: String((result.reason as Error)?.message ?? result.reason) }] : [],
        );
        if (failed.length > 0) {
          throw new ServiceUnavailableError(`Not ready: ${failed.map((f) => `${f.name} (${f.reason})`).join('; ')}.`, {
            extensions: { checks: Object.fromEntries(deps.readiness.map((r) => [r.name, failed.some((f) => f.name === r.name) ? 'failed' : 'ok'])) },
          });
        }
        ctx.body = { status: 'ok', checks: Object.fromEntries(deps.readiness.map((r) => [r.name, 'ok'])) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/metrics',
      operationId: 'getMetrics',
      summary: 'Prometheus metrics in the text exposition format.',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'Metrics.', contentType: 'text/plain' } },
      handler: async ({ ctx }) => {
        ctx.type = deps.metrics.registry.contentType;
        ctx.body = await deps.metrics.registry.metrics();
      },
    }),
    defineRoute({
      method: 'get',
      path: '/openapi.json',
      operationId: 'getOpenApiDocument',
      summary: 'This API described as OpenAPI 3.1, generated from the schemas that validate requests.',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'The OpenAPI document.', contentType: 'application/json' } },
      handler: ({ ctx }) => {
        ctx.body = openApi();
      },
    }),
    defineRoute({
      method: 'get',
      path: '/docs',
      operationId: 'getApiReference',
      summary: 'A human-readable API reference, rendered from the OpenAPI document.',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'HTML page.', contentType: 'text/html' } },
      handler: ({ ctx }) => {
        ctx.type = 'text/html; charset=utf-8';
        ctx.body = docsPage ??= renderDocsPage(openApi());
      },
    }),
  ];
}
