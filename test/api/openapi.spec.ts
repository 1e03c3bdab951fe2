import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { buildOpenApiDocument } from '../../src/api/openapi.ts';
import { systemRoutes } from '../../src/api/routes/system-routes.ts';
import type { RouteSpec } from '../../src/api/route.ts';
import { createMetrics } from '../../src/metrics.ts';

describe('OpenAPI document', () => {
  it('is valid OpenAPI 3.1 and lists every route', async () => {
    const routes: RouteSpec[] = systemRoutes({
      metrics: createMetrics({ collectDefaults: false }),
      isDraining: () => false,
      readiness: [],
      info: { title: 't', version: '0', description: 'd' },
      allRoutes: () => routes,
    });
    const document = buildOpenApiDocument(routes, { title: 'control-plane', version: '0.1.0', description: 'test' });
    const validated = (await SwaggerParser.validate(structuredClone(document) as never)) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(validated.openapi, '3.1.0');
    for (const route of routes) {
      const path = route.path.replace(/:(\w+)/g, '{$1}');
      assert.ok((document.paths as Record<string, Record<string, unknown>>)[path]?.[route.method], `${route.method} ${path} missing`);
    }
  });
});
