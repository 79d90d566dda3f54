import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_VARIABLES } from '../src/config/env';
import { findFreePort } from '../src/db/embedded-postgres';

const REPO_ROOT = path.resolve(__dirname, '..');
const READY_DEADLINE_MS = 120_000; // 2 min: tsx compiles the server on a cold start
const STOP_DEADLINE_MS = 30_000; // 30 s

export interface BenchServer {
  readonly url: string;
  readonly baseUrl: string;
  readonly pid: number;
  /** Prometheus text of GET /metrics. */
  metrics(): Promise<string>;
  /** Resident set size of the server process, from /proc. */
  rssBytes(): number;
  /** CPU seconds (user + system, all threads) the server process has used so far, from /proc. */
  cpuSeconds(): number;
  output(): string;
  /**
   * Asks a server started with `--heapsnapshot-signal=SIGUSR2` for a heap snapshot and waits
   * until the file is written (the process is stopped meanwhile).
   */
  heapSnapshot(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `src/main.ts` as its own process, so its event loop, CPU and memory are its own and the
 * load generator never shares them. Configuration comes only from `env`: the bench's own
 * shell settings are not inherited.
 */
export async function startBenchServer(options: {
  env: Record<string, string>;
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: readonly string[];
  /** The checkout whose `src/main.ts` runs. @default this repository */
  root?: string;
}): Promise<BenchServer> {
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const inherited = { ...process.env };
  for (const name of ENV_VARIABLES) {
    delete inherited[name];
  }
  const child: ChildProcess = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts'],
    {
      cwd: options.root ?? REPO_ROOT,
      env: { ...inherited, ...options.env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const collect = (chunk: string) => {
    // Keep the tail only: a long run at LOG_LEVEL=warn still writes little.
    output = (output + chunk).slice(-200_000);
  };
  child.stdout!.setEncoding('utf8').on('data', collect);
  child.stderr!.setEncoding('utf8').on('data', collect);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      if (code !== 0 && signal !== 'SIGINT') {
        collect(`\n[the server exited: code ${code}, signal ${signal}]\n`);
      }
      resolve(code);
    }),
  );
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);

  const server: BenchServer = {
    url: `${baseUrl}/graphql`,
    baseUrl,
    pid: child.pid ?? -1,
    async metrics() {
      // Once more on a connection error: a pooled keep-alive socket the server closed while
      // this process was busy (loading a model, say) fails the first request sent on it.
      const res = await fetch(`${baseUrl}/metrics`).catch(() => fetch(`${baseUrl}/metrics`));
      return res.text();
    },
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      return kb ? Number(kb[1]) * 1024 : Number.NaN;
    },
    cpuSeconds() {
      // Fields 14 and 15 of /proc/PID/stat (after the parenthesised command) are utime and
      // stime in clock ticks, which are 100 a second on Linux.
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    output: () => output,
    async heapSnapshot() {
      child.kill('SIGUSR2');
      // Writing blocks the server's event loop: it answers again once the file is complete.
      const deadline = Date.now() + 300_000;
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          await (await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) })).text();
          return;
        } catch (error) {
          if (Date.now() > deadline) {
            throw error;
          }
        }
      }
    },
    async stop() {
      process.off('exit', kill);
      if (child.exitCode === null && child.signalCode === null) {
        // SIGINT, like Ctrl-C: main.ts disposes in order and --cpu-prof writes its profile.
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
        await exited;
        clearTimeout(timer);
      }
    },
  };

  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + READY_DEADLINE_MS;
  while (!gone && Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/ready`, { signal: AbortSignal.timeout(5_000) });
      await res.body?.cancel();
      if (res.status === 200) {
        return server;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await server.stop();
  throw new Error(`the server did not become ready; its output:\n${output}`);
}

/** The value of one sample of a Prometheus text exposition; labels must match exactly. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) {
      continue;
    }
    const match = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) {
      continue;
    }
    const sampleLabels = Object.fromEntries(
      [...(match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => sampleLabels[k] === v)) {
      total += Number(match[4]);
      found = true;
    }
  }
  return found ? total : Number.NaN;
}
