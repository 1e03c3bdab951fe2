import { Type } from '@sinclair/typebox';
import { AppError, BadRequestError, PayloadTooLargeError, ServiceUnavailableError, UnsupportedMediaTypeError } from '../errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** RFC 9457 problem document, as this service writes it. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI naming the kind of problem; stable, clients may branch on it.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Short stable code, the last segment of `type`.' }),
    instance: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
    retryable: Type.Boolean({ description: 'Whether sending the same request again can succeed.' }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          in: Type.String(),
          pointer: Type.String({ description: 'RFC 6901 JSON Pointer into the part named by `in`.' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { additionalProperties: true },
);

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  requestId?: string;
  retryable: boolean;
  [extension: string]: unknown;
}

export function problemType(code: string): string {
  return `https://control-plane.gsv.io/problems/${code}`;
}

interface HttpLikeError { status?: unknown; statusCode?: unknown; expose?: unknown; type?: unknown; message?: unknown }

const CONNECTION_ERROR_NAMES = new Set([
  'SequelizeConnectionError',
  'SequelizeConnectionRefusedError',
  'SequelizeConnectionAcquireTimeoutError',
  'SequelizeHostNotReachableError',
  'SequelizeConnectionTimedOutError',
]);

/**
 * Maps anything thrown in a request to an AppError. Errors from Koa's own stack (body parser,
 * http-errors) carry a status; database outages become 503 so clients know to retry; the rest
 * is a 500 whose details stay in the log.
 */
export function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  const e = (error ?? {}) as HttpLikeError;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === 413) return new PayloadTooLargeError('The request body is larger than this service accepts.');
  if (status === 415) return new UnsupportedMediaTypeError('Send the body as application/json.');
  if (status === 400 && (e.type === 'entity.parse.failed' || error instanceof SyntaxError)) return new BadRequestError('The request body is not valid JSON.');
  if (status !== undefined && status >= 400 && status < 500 && e.expose === true) {
    return new AppError(status, 'bad-request', 'Bad request', { detail: typeof e.message === 'string' ? e.message : 'Bad request.' });
  }
  if (error instanceof Error && (CONNECTION_ERROR_NAMES.has(error.name) || isConnectionFailure(error))) {
    return new ServiceUnavailableError('The database is unavailable; retry shortly.', { cause: error });
  }
  return undefined;
}

function isConnectionFailure(error: Error): boolean {
  const code = (error as { code?: unknown; parent?: { code?: unknown } }).parent?.code ?? (error as { code?: unknown }).code;
  // Class 08 (connection exception) and 57P0x (admin shutdown, crash shutdown, cannot connect now).
  return typeof code === 'string' && (/^08/.test(code) || /^57P0[1-3]$/.test(code) || code === 'ECONNREFUSED' || code === 'ECONNRESET');
}

export function toProblem(error: AppError, requestId: string | undefined, instance: string): ProblemDocument {
  return {
    ...error.extensions,
    type: problemType(error.code),
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
    instance,
    requestId,
    retryable: error.retryable,
  };
}
