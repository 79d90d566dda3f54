import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database';
import { createClient } from '../support/graphql-client';
import {
  startServerProcess,
  stopAllServerProcesses,
  type ServerProcess,
} from '../support/server-process';
import { ADMIN_PASSWORD, replicaEnv } from '../support/test-app';

describe('graceful shutdown', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess({
      env: {
        ...replicaEnv(await createTestDatabase()),
        SHUTDOWN_GRACE_MS: '15000',
      },
    });
  }, 90_000);
  afterAll(async () => {
    await stopAllServerProcesses();
  });

  it('finishes in-flight requests after SIGTERM, refuses new ones and exits 0', async () => {
    const gql = createClient(server.url);
    const token = (
      await gql('mutation($p: String!) { login(username: "admin", password: $p) { token } }', {
        p: ADMIN_PASSWORD,
      })
    ).data!.login.token;
    const models = await gql('{ models { id name } }', {}, token);
    const modelId = models.data!.models.find(
      (m: { name: string }) => m.name === 'moby-char-trigram',
    ).id;

    // A long generation is in flight when the signal arrives.
    const inFlight = gql(
      'mutation($m: ID!) { infer(modelId: $m, input: "the whale", parameters: { max_tokens: 2000, seed: 1 }) { output } }',
      { m: modelId },
      token,
    );
    await new Promise((r) => setTimeout(r, 150));
    const exited = server.stop('SIGTERM');

    const result = await inFlight;
    expect(result.errors).toBeUndefined();
    expect(result.data!.infer.output.tokens).toBe(2000);
    expect(await exited).toBe(0);
    await expect(fetch(`${server.baseUrl}/health`)).rejects.toThrow();
  }, 60_000);
});
