/**
 * Failures that mean "a dependency is unreachable right now", not "this request is wrong":
 * pg connection errors and SQLSTATE classes 08 (connection) and 57P (shutdown), pool
 * connection timeouts, and ioredis giving up on a command. The API answers them with
 * SERVICE_UNAVAILABLE so clients retry instead of reporting a bug.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
const MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Connection is closed/i,
  /Stream isn't writeable/i,
  /Reached the max retries per request limit/i,
  /the database system is (shutting down|starting up|in recovery mode)/i,
];

export function isOutage(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
    };
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES.has(code) || code.startsWith('08') || code.startsWith('57P')) {
      return true;
    }
    if (typeof e.message === 'string' && MESSAGES.some((m) => m.test(e.message as string))) {
      return true;
    }
    if ((e as { name?: unknown }).name === 'MaxRetriesPerRequestError') {
      return true;
    }
    current = e.driverError ?? e.cause;
  }
  return false;
}
