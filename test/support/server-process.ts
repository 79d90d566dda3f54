import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ENV_VARIABLES } from '../../src/config/env';
import { findFreePort } from '../../src/db/embedded-postgres';

const REPO_ROOT = path.resolve(__dirname, '../..');
const READY_DEADLINE_MS = 60_000; // 60 s
const READY_POLL_MS = 200; // 200 ms
const STOP_DEADLINE_MS = 30_000; // 30 s

/**
 * Server settings a developer's shell may carry: the child never inherits them, so each test
 * states exactly the configuration it runs under.
 */
const CONFIG_VARIABLES = ENV_VARIABLES;

export interface ServerProcessOptions {
  /** Server configuration; PORT, HOST, LOG_LEVEL and NODE_ENV are always set by the harness. */
  readonly env: Readonly<Record<string, string>>;
  /** @default the repository root */
  readonly cwd?: string;
}

export interface ServerProcess {
  /** The GraphQL endpoint, `http://127.0.0.1:PORT/graphql`. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`, for /health, /ready and /metrics. */
  readonly baseUrl: string;
  readonly port: number;
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (null when a signal ended the process). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL, without waiting. */
  kill(): void;
}

const running = new Set<ChildProcess>();

// A test worker that dies must not leave servers behind.
process.once('exit', () => {
  for (const child of running) {
    child.kill('SIGKILL');
  }
});

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function isReady(baseUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/ready`, { signal: AbortSignal.timeout(5_000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Runs `src/main.ts` as its own process (one process, so SIGKILL really kills the server) on
 * a free port, and resolves once GET /ready answers 200. Rejects with the captured output
 * when the process exits first or is not ready within 60 s.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const inherited = { ...process.env };
  for (const name of CONFIG_VARIABLES) {
    delete inherited[name];
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: options.cwd ?? REPO_ROOT,
    env: {
      ...inherited,
      // Test processes share one Redis and log in as "admin" many times a minute.
      LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
      LOGIN_IP_RATE_LIMIT_PER_MINUTE: '1000000',
      ...options.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', (error) => {
    output += `spawn error: ${error.message}\n`;
  });

  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });

  const exit = exited(child);
  const server: ServerProcess = {
    url: `${baseUrl}/graphql`,
    baseUrl,
    port,
    pid: child.pid ?? -1,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
    kill() {
      child.kill('SIGKILL');
    },
  };

  let gone = false;
  void exit.then(() => {
    gone = true;
  });
  const deadline = Date.now() + READY_DEADLINE_MS;
  while (!gone) {
    if (await isReady(baseUrl)) {
      return server;
    }
    if (Date.now() > deadline) {
      await server.stop('SIGKILL');
      throw new Error(`server was not ready within ${READY_DEADLINE_MS} ms; output:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  const code = await exit;
  throw new Error(`server exited with code ${code} before it was ready; output:\n${output}`);
}

/**
 * SIGTERMs every server this worker started that is still running and waits for each to exit
 * (SIGKILL after 30 s). For `afterAll`, so a failing test leaves no process behind.
 */
export async function stopAllServerProcesses(): Promise<void> {
  await Promise.all(
    [...running].map(async (child) => {
      const exit = exited(child);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      await exit;
      clearTimeout(timer);
    }),
  );
}
