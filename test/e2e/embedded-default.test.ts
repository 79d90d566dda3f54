import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../support/graphql-client';
import {
  startServerProcess,
  stopAllServerProcesses,
  type ServerProcess,
} from '../support/server-process';

/**
 * The newcomer's path: no DATABASE_URL, no REDIS_URL, no ADMIN_PASSWORD. The server starts
 * its own PostgreSQL under DATA_DIR and prints a generated admin password once.
 */

const SLOW = 90_000; // 90 s: the first start runs initdb
const PASSWORD_LINE = /Password \(shown once, stored only as a hash\): (\S+)/;

const LOGIN = `mutation($u: String!, $p: String!) {
  login(username: $u, password: $p) { token }
}`;

async function login(server: ServerProcess, password: string) {
  const gql = createClient(server.url);
  return gql<{ login: { token: string } | null }>(LOGIN, { u: 'admin', p: password });
}

/** Every regular file under `dir`, skipping what cannot be read. */
async function* filesUnder(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      yield* filesUnder(full);
    } else if (entry.isFile()) {
      yield full;
    }
  }
}

async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const bytes = Buffer.from(needle, 'utf8');
  const found: string[] = [];
  for await (const file of filesUnder(dir)) {
    const content = await readFile(file).catch(() => undefined);
    if (content?.includes(bytes)) {
      found.push(file);
    }
  }
  return found;
}

describe('the embedded default, started as a process with no configuration', () => {
  let dataDir: string;
  let server: ServerProcess;
  let password: string;

  const start = () => startServerProcess({ env: { DATA_DIR: dataDir } });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'context-server-e2e-'));
    server = await start();
    password = PASSWORD_LINE.exec(server.output())?.[1] ?? '';
  }, SLOW);

  afterAll(async () => {
    await stopAllServerProcesses();
    // A SIGKILLed server leaves its PostgreSQL running: a clean start and stop takes it down.
    if (dataDir && existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))) {
      const last = await start();
      await last.stop('SIGTERM');
    }
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, SLOW);

  it('prints a generated admin password once, and that password logs in as the admin', async () => {
    expect(password).not.toBe('');
    expect(server.output().match(new RegExp(PASSWORD_LINE.source, 'g'))).toHaveLength(1);

    const res = await login(server, password);
    expect(res.errors).toBeUndefined();
    const token = res.data?.login?.token;
    expect(token).toEqual(expect.any(String));

    const gql = createClient(server.url);
    const me = await gql('{ me { username role } }', {}, token);
    expect(me.data?.me).toEqual({ username: 'admin', role: 'ADMIN' });
  });

  it('says in its log that it runs as a single replica', () => {
    expect(server.output()).toContain('REDIS_URL is unset');
  });

  it('serves GraphiQL with every asset inlined, and answers /health, /ready and /metrics', async () => {
    const page = await fetch(server.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html.toLowerCase()).toContain('graphiql');
    expect(html).not.toMatch(/<script[^>]*\ssrc=["']?https?:/i);
    expect(html).not.toMatch(/<link[^>]*\shref=["']?https?:/i);

    const health = await fetch(`${server.baseUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const ready = await fetch(`${server.baseUrl}/ready`);
    expect(ready.status).toBe(200);

    const metrics = await fetch(`${server.baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('http_requests_total');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it(
    'exits 0 on SIGTERM, keeps its data across a restart, and never writes the password to DATA_DIR',
    async () => {
      expect(await server.stop('SIGTERM')).toBe(0);
      expect(await filesContaining(dataDir, password)).toEqual([]);

      server = await start();
      expect(server.output()).not.toMatch(PASSWORD_LINE);
      const res = await login(server, password);
      expect(res.errors).toBeUndefined();
      expect(res.data?.login?.token).toEqual(expect.any(String));
    },
    SLOW,
  );

  it(
    'comes up ready after a SIGKILL, taking over the PostgreSQL the killed server left running',
    async () => {
      expect(await server.stop('SIGKILL')).toBeNull();

      server = await start();
      expect(server.output()).toContain('stopping an embedded PostgreSQL left running');
      const res = await login(server, password);
      expect(res.errors).toBeUndefined();
      expect(res.data?.login?.token).toEqual(expect.any(String));
    },
    SLOW,
  );
});
