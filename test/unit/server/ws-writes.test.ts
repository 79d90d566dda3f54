import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../../src/server/ws-writes';

/** A socket that records each write reaching it, and a sender framing as ws does (2 chunks). */
function fakeConnection() {
  const writes: number[] = [];
  const raw = new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      writes.push(1);
      callback();
    },
    writev(chunks, callback) {
      writes.push(chunks.length);
      callback();
    },
  });
  const socket = {
    send(data: string) {
      raw.cork();
      raw.write(Buffer.from([0x81, data.length]));
      raw.write(data);
      raw.uncork();
    },
  };
  return { raw, socket, writes };
}

describe('coalesceWrites', () => {
  it('writes a burst of frames a few at a time, and each frame at once when alone', async () => {
    const { raw, socket, writes } = fakeConnection();
    coalesceWrites(socket as never, raw);
    for (let i = 0; i < 40; i++) {
      socket.send(`frame ${i}`);
    }
    expect(writes).toEqual([32, 32]); // every 16 frames (header + payload each)
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual([32, 32, 16]); // the rest once the burst is over

    socket.send('alone');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual([32, 32, 16, 2]);
  });
});
