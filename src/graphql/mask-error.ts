import { randomUUID } from 'node:crypto';
import { type ApolloServerPlugin } from '@apollo/server';
import { type GraphQLFormattedError } from 'graphql';
import { type Logger } from '../ops/logger';
import { AppError, ERROR_MEANINGS, ErrorCode } from './errors';
import { isOutage } from './outages';

/**
 * Errors that no code path marked safe (a TypeError, a driver error whose message holds SQL)
 * get an id here, are logged once with the request id, and reach the client only as
 * INTERNAL_SERVER_ERROR + errorId.
 */
const errorIds = new WeakMap<object, string>();

/** The error a resolver threw, under graphql-js's and Apollo's wrappers. */
function originalOf(error: unknown): unknown {
  let current = error;
  while (current instanceof Error && 'originalError' in current && current.originalError) {
    current = current.originalError;
  }
  return current;
}

/**
 * True for errors nobody raised on purpose: not an AppError, and not a GraphQLError from
 * graphql-js or Apollo (parse, validation, variable coercion), which are safe to show. The
 * check is by shape, not instanceof, since a bundler may load graphql-js twice (CJS and ESM).
 */
export function isUnexpected(error: unknown): boolean {
  const original = originalOf(error);
  // GraphQLError and Apollo's subclasses (PersistedQueryNotFoundError, …) all carry
  // `extensions`; plain errors from code and drivers do not.
  const isGraphQLError =
    original instanceof Error &&
    typeof (original as { extensions?: unknown }).extensions === 'object';
  return !(original instanceof AppError || isGraphQLError);
}

export function logUnexpectedError(logger: Logger, error: unknown, requestId?: string): string {
  const original = originalOf(error);
  const key = typeof original === 'object' && original !== null ? original : { original };
  let errorId = errorIds.get(key);
  if (!errorId) {
    errorId = randomUUID();
    errorIds.set(key, errorId);
    logger.error({ err: original, errorId, requestId }, 'unexpected error');
  }
  return errorId;
}

/** Apollo `formatError`: passes coded errors through, masks the rest, never sends a stack. */
export function createFormatError(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // graphql-js's recursive parser overflows the stack on absurdly nested documents.
    const original = originalOf(error);
    if (original instanceof RangeError && /call stack/i.test(original.message)) {
      return {
        message: 'Operation is nested too deeply to parse',
        extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: 'depth' },
      };
    }
    if (isUnexpected(error) && isOutage(original)) {
      return {
        message: 'A backing service is unavailable; retry shortly',
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: ErrorCode.SERVICE_UNAVAILABLE },
      };
    }
    if (isUnexpected(error)) {
      const errorId = logUnexpectedError(logger, error);
      return {
        message: 'Internal server error',
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, errorId },
      };
    }
    const {
      stacktrace: _stacktrace,
      exception: _exception,
      ...extensions
    } = formatted.extensions ?? {};
    // Apollo re-codes validation errors as GRAPHQL_VALIDATION_FAILED; keep ours (e.g. a
    // QUERY_TOO_COMPLEX raised by a limit rule) with its details.
    if (original instanceof Error && original !== error && 'extensions' in original) {
      const inner = (original as { extensions?: Record<string, unknown> }).extensions ?? {};
      if (typeof inner.code === 'string' && inner.code in ERROR_MEANINGS) {
        const { http: _http, ...details } = inner;
        return { ...formatted, extensions: { ...extensions, ...details } };
      }
    }
    // graphql-js aborts parsing past `maxTokens` with a syntax error; it is a size limit.
    const tokens = /Document contains more th(?:at|an) (\d+) tokens/.exec(formatted.message);
    if (tokens) {
      return {
        message: `Operation exceeds the tokens limit of ${tokens[1]}`,
        extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: 'tokens', max: Number(tokens[1]) },
      };
    }
    return { ...formatted, extensions };
  };
}

/** Logs masked errors while the request id is still at hand (before formatError runs). */
export function errorLoggingPlugin(logger: Logger): ApolloServerPlugin<{ requestId?: string }> {
  return {
    async requestDidStart({ contextValue }) {
      return {
        async didEncounterErrors({ errors }) {
          for (const error of errors) {
            if (isUnexpected(error) && !isOutage(originalOf(error))) {
              logUnexpectedError(logger, error, contextValue.requestId);
            }
          }
        },
      };
    },
  };
}
