import { Writable } from 'node:stream';
import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/ops/logger';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger('trace', stream), lines };
}

describe('the logger', () => {
  it('keeps the SQL and its parameters of a database error out of the log', () => {
    const { logger, lines } = capture();
    const error = new QueryFailedError(
      'INSERT INTO users (password_hash) VALUES ($1)',
      ['scrypt$secret-hash'],
      new Error('boom'),
    );
    logger.error({ err: error }, 'failed');
    const out = lines.join('');
    expect(out).toContain('QueryFailedError');
    expect(out).not.toContain('secret-hash');
    expect(out).not.toContain('INSERT INTO users');
  });

  it('redacts passwords, tokens, authorization headers and context sections', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        req: { headers: { authorization: 'Bearer abc.def' } },
        body: {
          password: 'hunter2',
          token: 'tok-123',
          preferences: { colour: 'teal-77' },
          input: 'prompt-xyz',
        },
      },
      'request',
    );
    const out = lines.join('');
    for (const secret of ['abc.def', 'hunter2', 'tok-123', 'teal-77', 'prompt-xyz']) {
      expect(out).not.toContain(secret);
    }
  });
});
