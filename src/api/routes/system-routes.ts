import { Type } from '@sinclair/typebox';
import type { Metrics } from '../../metrics.ts';
import { ServiceUnavailableError } from '../../errors.ts';
import { buildOpenApiDocument, type OpenApiInfo } from '../openapi.ts';
import { renderDocsPage } from '../docs-page.ts';
import { defineRoute, type RouteSpec } from '../route.ts';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
  /**
   * false: a failure is reported (`degraded`) but does not make the replica unready. For a
   * remote Git host: an outage of GitHub must not take every replica out of the load balancer,
   * or the webhooks GitHub and Argo CD send meanwhile are lost; the outbox waits it out.
   */
  critical?: boolean;
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
  checks: Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('degraded')])),
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
      summary: 'Readiness: the database answers (and a local GitOps repository); a remote Git host that does not is reported degraded, not unready.',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'Ready to serve.', schema: ReadyBody }, 503: { description: 'A dependency is down, or the service is shutting down.' } },
      handler: async ({ ctx }) => {
        if (deps.isDraining()) throw new ServiceUnavailableError('The service is shutting down.');
        const results = await Promise.allSettled(deps.readiness.map((r) => r.check()));
        const failed = results.flatMap((result, i) =>
          result.status === 'rejected' ? [{ name: deps.readiness[i]!.name, critical: deps.readiness[i]!.critical !== false, reason: String((result.reason as Error)?.message ?? result.reason) }] : [],
        );
        const state = (name: string) => {
          const failure = failed.find((f) => f.name === name);
          return failure === undefined ? 'ok' : failure.critical ? 'failed' : 'degraded';
        };
        if (failed.some((f) => f.critical)) {
          throw new ServiceUnavailableError(`Not ready: ${failed.filter((f) => f.critical).map((f) => `${f.name} (${f.reason})`).join('; ')}.`, {
            extensions: { checks: Object.fromEntries(deps.readiness.map((r) => [r.name, state(r.name)])) },
          });
        }
        for (const f of failed) ctx.state.log?.warn({ check: f.name, reason: f.reason }, 'readiness check degraded');
        ctx.body = { status: 'ok', checks: Object.fromEntries(deps.readiness.map((r) => [r.name, state(r.name)])) };
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
