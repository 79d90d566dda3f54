import { type IncomingMessage, type ServerResponse } from 'node:http';

declare module 'node:http' {
  interface IncomingMessage {
    /** When the request arrived (`performance.now()`), before it waited for its turn. */
    receivedAt?: number;
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Starts at most `perTurn` HTTP requests per turn of the event loop; the others wait in
 * arrival order for the next turns, with timers, WebSocket frames and model results served
 * in between.
 *
 * Without it a saturated server takes every request whose bytes have arrived in one poll
 * phase: with 64 clients answered in lockstep that is 64 requests' worth of synchronous work
 * (parsing, validation, resolvers up to their first I/O) before a timer can fire, so the
 * event loop stalls for tens of milliseconds and WebSocket pings, subscription deliveries and
 * model results wait behind it. Throughput is unchanged: the same work is done in smaller
 * slices. HTTP requests (health checks too) keep their arrival order; a waiting request's
 * body stays buffered in its stream, and `receivedAt` lets latency include the wait.
 */
export function admitPerTurn(handler: Handler, perTurn: number): Handler {
  const waiting: [IncomingMessage, ServerResponse][] = [];
  let admitted = 0;
  let turnScheduled = false;

  const turn = () => {
    admitted = 0;
    try {
      while (admitted < perTurn && waiting.length > 0) {
        admitted += 1;
        const [req, res] = waiting.shift()!;
        handler(req, res);
      }
    } finally {
      // Scheduled from this check phase, the next turn runs after the next poll and timers.
      if (waiting.length > 0 || admitted > 0) {
        setImmediate(turn);
      } else {
        turnScheduled = false;
      }
    }
  };

  return (req, res) => {
    req.receivedAt = performance.now();
    if (!turnScheduled) {
      turnScheduled = true;
      setImmediate(turn);
    }
    if (admitted < perTurn && waiting.length === 0) {
      admitted += 1;
      handler(req, res);
    } else {
      waiting.push([req, res]);
    }
  };
}
