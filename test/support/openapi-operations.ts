export interface OpenApiOperation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI path template, e.g. `/instances/{id}`. */
  path: string;
  operationId: string;
  security: boolean;
  parameters: { name: string; in: 'path' | 'query' | 'header' | 'cookie'; schema?: JsonSchema }[];
  requestBodySchema?: JsonSchema;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  [keyword: string]: unknown;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, unknown>>;
  security?: unknown[];
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Every operation the service documents, so suites that walk the API cover new routes by themselves. */
export function listOperations(document: OpenApiDocument): OpenApiOperation[] {
  const operations: OpenApiOperation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method] as
        | { operationId?: string; security?: unknown[]; parameters?: OpenApiOperation['parameters']; requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }
        | undefined;
      if (!operation) continue;
      const security = operation.security ?? document.security ?? [];
      const content = operation.requestBody?.content ?? {};
      const json = Object.entries(content).find(([type]) => type.includes('json'))?.[1];
      operations.push({
        method,
        path,
        operationId: operation.operationId ?? `${method} ${path}`,
        security: security.length > 0,
        parameters: operation.parameters ?? [],
        ...(json?.schema ? { requestBodySchema: json.schema } : {}),
      });
    }
  }
  return operations;
}

export function findOperation(document: OpenApiDocument, method: OpenApiOperation['method'], path: string): OpenApiOperation | undefined {
  return listOperations(document).find((op) => op.method === method && op.path === path);
}

export async function fetchOpenApi(baseUrl: string): Promise<OpenApiDocument> {
  const response = await fetch(`${baseUrl}/openapi.json`);
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
  return (await response.json()) as OpenApiDocument;
}
