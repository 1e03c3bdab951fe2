import type { FieldError } from './validation.ts';

export interface AppErrorOptions {
  detail?: string;
  retryable?: boolean;
  cause?: unknown;
  /** Extra members for the problem document (RFC 9457 §3.2). */
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * Every failure the service means to report is an AppError: an HTTP status, a stable code that
 * clients may branch on, and whether retrying the same call can help. One middleware turns it
 * into application/problem+json; nothing matches on message text.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly retryable: boolean;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, title: string, options: AppErrorOptions = {}) {
    super(options.detail ?? title, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = title;
    this.retryable = options.retryable ?? false;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export class BadRequestError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super(400, 'bad-request', 'Bad request', { ...options, detail });
  }
}

export class ValidationError extends AppError {
  readonly errors: FieldError[];
  constructor(errors: FieldError[], detail = 'The request is not valid.', status: 400 | 422 = 400) {
    super(status, 'validation-failed', 'Validation failed', { detail, extensions: { errors } });
    this.errors = errors;
  }
}

export class UnauthorizedError extends AppError {
  constructor(detail = 'A valid bearer token is required.', options: AppErrorOptions = {}) {
    super(401, 'unauthorized', 'Unauthorized', {
      ...options,
      detail,
      headers: { 'WWW-Authenticate': 'Bearer', ...options.headers },
    });
  }
}

/** A webhook whose signature or shared secret does not match: 401, nothing was processed. */
export class InvalidSignatureError extends AppError {
  constructor(detail: string) {
    super(401, 'invalid-signature', 'Invalid webhook signature', { detail });
  }
}

export class PaymentRequiredError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super(402, 'payment-required', 'Payment required', { ...options, detail });
  }
}

/** A member's holds on one wallet would pass BILLING_MEMBER_HOLD_MAX_MINOR (an owner may place it). */
export class MemberHoldLimitError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super(403, 'member-hold-limit', 'Member hold limit', { ...options, detail });
  }
}

export class ForbiddenError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super(403, 'forbidden', 'Forbidden', { ...options, detail });
  }
}

export class NotFoundError extends AppError {
  constructor(detail = 'No such resource.', options: AppErrorOptions = {}) {
    super(404, 'not-found', 'Not found', { ...options, detail });
  }
}

export class MethodNotAllowedError extends AppError {
  constructor(allowed: string[]) {
    super(405, 'method-not-allowed', 'Method not allowed', {
      detail: `Allowed methods: ${allowed.join(', ')}.`,
      headers: { Allow: allowed.join(', ') },
    });
  }
}

export class ConflictError extends AppError {
  constructor(code: string, detail: string, options: AppErrorOptions = {}) {
    super(409, code, 'Conflict', { ...options, detail });
  }
}

export type AuthorizationResolution = 'settled' | 'voided' | 'expired';

/** A billing hold resolves at most once; settling or voiding one already resolved is refused. */
export class AuthorizationResolvedError extends ConflictError {
  readonly resolution: AuthorizationResolution;
  constructor(authorizationId: string, resolution: AuthorizationResolution) {
    super(
      resolution === 'expired' ? 'authorization-expired' : `authorization-already-${resolution}`,
      resolution === 'expired'
        ? `Authorization ${authorizationId} has expired; its amount is released and it can no longer be settled or voided.`
        : `Authorization ${authorizationId} is already ${resolution}; a hold resolves only once.`,
      { extensions: { authorizationId, status: resolution } },
    );
    this.resolution = resolution;
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(detail: string) {
    super(413, 'payload-too-large', 'Payload too large', { detail });
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(detail: string) {
    super(415, 'unsupported-media-type', 'Unsupported media type', { detail });
  }
}

export class UnprocessableError extends AppError {
  constructor(code: string, detail: string, options: AppErrorOptions = {}) {
    super(422, code, 'Unprocessable request', { ...options, detail });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super(503, 'service-unavailable', 'Service unavailable', { retryable: true, ...options, detail });
  }
}

/** Raised at start-up when the environment is wrong; main prints it and exits non-zero. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
