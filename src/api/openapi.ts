import type { TSchema } from '@sinclair/typebox';
import { ProblemSchema, PROBLEM_CONTENT_TYPE } from './problem.ts';
import type { RouteSpec } from './route.ts';

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

type JsonObject = Record<string, unknown>;

/** Strips TypeBox's symbol keys and undefined values, leaving plain JSON Schema. */
function plain(schema: TSchema): JsonObject {
  return JSON.parse(JSON.stringify(schema)) as JsonObject;
}

function openApiPath(koaPath: string): string {
  return koaPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parametersOf(spec: RouteSpec): JsonObject[] {
  const out: JsonObject[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
    if (!schema) continue;
    const object = plain(schema) as { properties?: Record<string, JsonObject>; required?: string[] };
    for (const [name, property] of Object.entries(object.properties ?? {})) {
      const { description, ...rest } = property;
      out.push({
        name,
        in: where,
        required: where === 'path' || (object.required ?? []).includes(name),
        ...(description !== undefined ? { description } : {}),
        schema: rest,
      });
    }
  }
  if (spec.idempotent) {
    out.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: 'Replays the stored response for a repeated key and body; the same key with another body is 422.',
      schema: { type: 'string', minLength: 1, maxLength: 255 },
    });
  }
  return out;
}

const SECURITY: Record<Exclude<RouteSpec['access'], 'public'>, JsonObject[]> = {
  authenticated: [{ bearerAuth: [] }],
  'platform-admin': [{ bearerAuth: [] }],
  webhook: [],
};

/** Builds the OpenAPI 3.1 document from the same RouteSpecs that the router validates with. */
export function buildOpenApiDocument(routes: RouteSpec[], info: OpenApiInfo): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const spec of routes) {
    const responses: JsonObject = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      const contentType = response.contentType ?? (response.schema ? 'application/json' : undefined);
      responses[status] = {
        description: response.description,
        ...(contentType ? { content: { [contentType]: response.schema ? { schema: plain(response.schema) } : {} } } : {}),
      };
    }
    responses.default = { $ref: '#/components/responses/Problem' };
    const parameters = parametersOf(spec);
    const operation: JsonObject = {
      operationId: spec.operationId,
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      tags: spec.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(spec.body) } } } } : {}),
      responses,
      security: spec.access === 'public' ? [] : SECURITY[spec.access],
    };
    const path = openApiPath(spec.path);
    paths[path] = { ...paths[path], [spec.method]: operation };
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: { Problem: plain(ProblemSchema) },
      responses: {
        Problem: {
          description: 'An RFC 9457 problem document.',
          content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'An OIDC access token from the platform realm (JWT), or an API token issued by this service.',
        },
      },
    },
  };
}
