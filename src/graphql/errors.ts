/** Every `extensions.code` this server sets on purpose, and what it means to a client. */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  CONFLICT: 'CONFLICT',
  CONTEXT_TOO_LARGE: 'CONTEXT_TOO_LARGE',
  RATE_LIMITED: 'RATE_LIMITED',
  MODEL_UNAVAILABLE: 'MODEL_UNAVAILABLE',
  INFERENCE_FAILED: 'INFERENCE_FAILED',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_MEANINGS: Readonly<Record<ErrorCode, string>> = {
  UNAUTHENTICATED: 'No valid token was sent, or it expired, or its user is disabled.',
  FORBIDDEN: 'The caller is known but may not do this.',
  NOT_FOUND: 'The object does not exist or is not visible to the caller.',
  BAD_USER_INPUT: 'An argument is malformed or out of range; the message names it.',
  CONFLICT: 'The write lost a race (expectedVersion) or breaks a uniqueness rule.',
  CONTEXT_TOO_LARGE: 'The serialized context exceeds the size limit.',
  RATE_LIMITED: 'Too many requests; retry after extensions.retryAfterSeconds.',
  MODEL_UNAVAILABLE: 'The model cannot be loaded or its remote server is down.',
  INFERENCE_FAILED: 'The model ran but failed on this input.',
  QUERY_TOO_COMPLEX: 'The operation exceeds a depth, alias or cost limit.',
  SERVICE_UNAVAILABLE: 'A dependency (database, Redis) is unreachable; retry later.',
  LIMIT_EXCEEDED: 'A per-connection or per-user limit (connections, subscriptions) was reached.',
  NOT_IMPLEMENTED: 'Part of the public contract that this release does not serve yet.',
  INTERNAL_SERVER_ERROR: 'An unexpected failure; extensions.errorId matches the server log.',
};

/**
 * An error whose message and extensions are safe to show to the client; anything else that
 * reaches a response is masked (mask-error.ts). It is a plain Error so that services stay
 * free of GraphQL; graphql-js copies `extensions` when it wraps it.
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    extensions: Record<string, unknown> = {},
  ) {
    super(message);
    this.extensions = { ...extensions, code };
  }
}

export const unauthenticated = (message = 'Authentication required') =>
  new AppError(ErrorCode.UNAUTHENTICATED, message);
export const forbidden = (message = 'Not allowed') => new AppError(ErrorCode.FORBIDDEN, message);
export const notFound = (what: string) => new AppError(ErrorCode.NOT_FOUND, `${what} not found`);
export const badInput = (message: string, extensions: Record<string, unknown> = {}) =>
  new AppError(ErrorCode.BAD_USER_INPUT, message, extensions);
export const conflict = (message: string, extensions: Record<string, unknown> = {}) =>
  new AppError(ErrorCode.CONFLICT, message, extensions);
export const serviceUnavailable = (message: string) =>
  new AppError(ErrorCode.SERVICE_UNAVAILABLE, message);
export const notImplemented = (what: string) =>
  new AppError(ErrorCode.NOT_IMPLEMENTED, `${what} is not implemented yet`);

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
