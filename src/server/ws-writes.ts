import { type Duplex } from 'node:stream';
import { type WebSocket } from 'ws';

/** Frames that may wait for company before they are written (see {@link coalesceWrites}). */
const FRAMES_PER_WRITE = 16;

/**
 * Frames sent to one socket within one burst of work (an event delivered to the hundred
 * subscriptions of one connection) leave in a few writes instead of one system call each:
 * the socket is corked at the first send, written every FRAMES_PER_WRITE frames so the
 * client can start reading while the rest are prepared, and uncorked once the burst is over.
 */
export function coalesceWrites(socket: Pick<WebSocket, 'send'>, raw: Duplex): void {
  const send = socket.send.bind(socket) as (...args: unknown[]) => void;
  let corked = false;
  let waiting = 0;
  socket.send = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      raw.cork();
      process.nextTick(() => {
        corked = false;
        waiting = 0;
        raw.uncork();
      });
    }
    send(...args);
    waiting += 1;
    if (waiting >= FRAMES_PER_WRITE) {
      waiting = 0;
      raw.uncork(); // writes what is buffered so far
      raw.cork();
    }
  }) as WebSocket['send'];
}
