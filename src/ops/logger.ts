import { pino, type Logger } from 'pino';
import { traceFields } from './tracing';

/**
 * Paths that must never reach a log line, whatever logs them. An allowlist of what may be
 * logged is impractical for free-form objects, so this denylist is kept deliberately wide
 * and every new sensitive field belongs here.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.authorization',
  '*.preferences',
  '*.demographics',
  '*.customAttributes',
  '*.input',
  '*.output',
  'variables',
  '*.variables',
  '*.parameters',
  '*.driverError',
];

/**
 * pino's error serializer, minus what database errors carry: TypeORM's QueryFailedError
 * holds the statement's `parameters` (password hashes, personal data) and the SQL.
 */
export function serializeError(error: unknown): Record<string, unknown> {
  const serialized = pino.stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  const { parameters: _p, query: _q, driverError: _d, ...rest } = serialized;
  return rest;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'context-server' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Trace ids on every line written inside a sampled span.
      mixin: traceFields,
      serializers: { err: serializeError },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

export type { Logger };
