/**
 * The baselines the server is measured against: a minimal node:http handler over raw `pg`
 * that does the same work for the same answer — verifies the same JWT and loads the caller,
 * reads the same rows, decrypts the same columns with the same FieldEncryption, writes the
 * same columns — and nothing else (no GraphQL, no validation, no cache, no pub/sub).
 *
 * It runs in a worker thread of the bench process (see {@link startRawBaseline}), so like the
 * server it has an event loop of its own, apart from the load generator's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import jwt from 'jsonwebtoken';
import { Pool } from 'pg';
import { FieldEncryption, parseEncryptionKeys } from '../src/security/field-encryption';

export interface RawBaselineOptions {
  readonly databaseUrl: string;
  readonly jwtSecret: string;
  readonly encryptionKeys: string;
  /** The server's DATABASE_POOL_SIZE. */
  readonly poolSize: number;
  readonly historyPage: number;
}

export interface RawBaseline {
  /** POST `{ first }`: the contexts page, as the GraphQL query answers it. */
  readonly contextsUrl: string;
  /** POST `{ id, patch }`: the update, as the updateContext mutation answers it. */
  readonly updateUrl: string;
  /** Milliseconds the handler's event loop has been busy so far (its thread's work). */
  busyMs(): number;
  stop(): Promise<void>;
}

/** Starts the handler in a worker thread on a free port. */
export function startRawBaseline(options: RawBaselineOptions): Promise<RawBaseline> {
  // tsx's CommonJS hook, so the worker can load this TypeScript file as the bench does.
  const worker = new Worker(`require('tsx/cjs'); require(${JSON.stringify(__filename)});`, {
    eval: true,
    workerData: options,
  });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (message: { port: number }) => {
      const base = `http://127.0.0.1:${message.port}`;
      resolve({
        contextsUrl: `${base}/contexts`,
        updateUrl: `${base}/update`,
        busyMs: () => worker.performance.eventLoopUtilization().active,
        stop: async () => {
          await worker.terminate();
        },
      });
    });
  });
}

// ------------------------------------------------------------------------- the worker

const aad = (column: string, id: string) => `contexts.${column}:${id}`;
const cursor = (values: readonly (string | number)[]) =>
  Buffer.from(JSON.stringify(values)).toString('base64url');

interface Viewer {
  readonly id: string;
  readonly username: string;
}

function serve(options: RawBaselineOptions): void {
  const pool = new Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  const encryption = new FieldEncryption(parseEncryptionKeys(options.encryptionKeys));

  async function authenticate(req: IncomingMessage): Promise<Viewer | null> {
    const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token) {
      return null;
    }
    const claims = jwt.verify(token, options.jwtSecret, { algorithms: ['HS256'] }) as {
      sub: string;
    };
    const { rows } = await pool.query<{ id: string; username: string; disabled: boolean }>(
      'SELECT id, username, disabled FROM users WHERE id = $1',
      [claims.sub],
    );
    return rows[0] && !rows[0].disabled ? rows[0] : null;
  }

  async function contexts(viewer: Viewer, first: number) {
    const { rows } = await pool.query(
      `SELECT * FROM contexts WHERE expires_at > now() AND user_id = $1
       ORDER BY updated_at DESC, id DESC LIMIT $2`,
      [viewer.id, first + 1],
    );
    const page = rows.slice(0, first);
    const ids = page.map((r) => r.id as string);
    const [models, history] = await Promise.all([
      pool.query('SELECT id, name, version FROM models WHERE id = ANY($1)', [
        [...new Set(page.map((r) => r.model_id as string))],
      ]),
      pool.query(
        `SELECT * FROM (
           SELECT h.*, row_number() OVER (PARTITION BY context_id ORDER BY sequence ASC) AS rn
           FROM history_entries h WHERE context_id = ANY($1)
         ) t WHERE rn <= $2 ORDER BY context_id, sequence`,
        [ids, options.historyPage + 1],
      ),
    ]);
    const modelById = new Map(models.rows.map((m) => [m.id as string, m]));
    const historyOf = new Map<string, Record<string, unknown>[]>();
    for (const h of history.rows) {
      const list = historyOf.get(h.context_id as string) ?? [];
      list.push(h);
      historyOf.set(h.context_id as string, list);
    }
    const edges = page.map((row) => {
      const id = row.id as string;
      const updatedAt = (row.updated_at as Date).toISOString();
      const user = encryption.decryptJson<{ preferences: unknown; demographics: unknown }>(
        row.user_data as Buffer,
        aad('user_data', id),
      );
      const model = modelById.get(row.model_id as string)!;
      const entries = historyOf.get(id) ?? [];
      return {
        cursor: cursor([updatedAt, id]),
        node: {
          id,
          version: row.version as number,
          updatedAt,
          user: {
            user: { id: viewer.id, username: viewer.username },
            preferences: user.preferences,
            demographics: user.demographics,
          },
          environment: {
            deploymentEnvironment: row.environment.deploymentEnvironment,
            serverLoad: row.environment.serverLoad,
            availableResources: row.environment.availableResources,
          },
          model: {
            model: { id: model.id, name: model.name, version: model.version },
            parameters: row.model_data.parameters,
            constraints: row.model_data.constraints,
          },
          data: { source: row.data.source, qualityMetrics: row.data.qualityMetrics },
          customAttributes: encryption.decryptJson(
            row.custom_attributes as Buffer,
            aad('custom_attributes', id),
          ),
          history: {
            edges: entries.slice(0, options.historyPage).map((h) => {
              const entryId = h.id as string;
              return {
                node: {
                  sequence: h.sequence as number,
                  createdAt: (h.created_at as Date).toISOString(),
                  input: encryption.decryptJson(
                    h.input as Buffer,
                    `history_entries.input:${entryId}`,
                  ),
                  output: encryption.decryptJson(
                    h.output as Buffer,
                    `history_entries.output:${entryId}`,
                  ),
                },
              };
            }),
            pageInfo: { hasNextPage: entries.length > options.historyPage },
          },
        },
      };
    });
    return {
      data: {
        contexts: {
          edges,
          pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null },
        },
      },
    };
  }

  async function update(viewer: Viewer, id: string, patch: any) {
    const environment = {
      timestamp: new Date().toISOString(),
      deploymentEnvironment: patch.environment.deploymentEnvironment,
      serverLoad: patch.environment.serverLoad,
      availableResources: patch.environment.availableResources,
    };
    const data = {
      source: patch.data.source,
      timestamp: null,
      qualityMetrics: patch.data.qualityMetrics,
    };
    const { rows } = await pool.query(
      `UPDATE contexts SET user_data = $2, environment = $3, data = $4, custom_attributes = $5,
         version = version + 1, updated_at = now(),
         expires_at = now() + make_interval(secs => COALESCE(ttl_seconds, $6))
       WHERE id = $1 AND user_id = $7 AND expires_at > now()
       RETURNING *`,
      [
        id,
        encryption.encryptJson(
          { preferences: patch.user.preferences, demographics: patch.user.demographics ?? null },
          aad('user_data', id),
        ),
        JSON.stringify(environment),
        JSON.stringify(data),
        encryption.encryptJson(patch.customAttributes, aad('custom_attributes', id)),
        30 * 24 * 3600,
        viewer.id,
      ],
    );
    const row = rows[0];
    if (!row) {
      return { errors: [{ message: 'Context not found' }] };
    }
    const user = encryption.decryptJson<{ preferences: unknown; demographics: unknown }>(
      row.user_data as Buffer,
      aad('user_data', id),
    );
    return {
      data: {
        updateContext: {
          id,
          version: row.version as number,
          user: { preferences: user.preferences, demographics: user.demographics },
          environment: {
            deploymentEnvironment: row.environment.deploymentEnvironment,
            serverLoad: row.environment.serverLoad,
            availableResources: row.environment.availableResources,
          },
          data: { source: row.data.source, qualityMetrics: row.data.qualityMetrics },
          customAttributes: encryption.decryptJson(
            row.custom_attributes as Buffer,
            aad('custom_attributes', id),
          ),
        },
      },
    };
  }

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    const json = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(json),
    });
    res.end(json);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        const viewer = await authenticate(req);
        if (!viewer) {
          reply(res, 401, { errors: [{ message: 'Unauthenticated' }] });
        } else if (req.url === '/contexts') {
          reply(res, 200, await contexts(viewer, Number(body.first)));
        } else if (req.url === '/update') {
          reply(res, 200, await update(viewer, String(body.id), body.patch));
        } else {
          reply(res, 404, { errors: [{ message: 'Not found' }] });
        }
      })().catch((error: unknown) => reply(res, 500, { errors: [{ message: String(error) }] }));
    });
  });
  server.listen(0, '127.0.0.1', () => {
    parentPort!.postMessage({ port: (server.address() as AddressInfo).port });
  });
}

if (!isMainThread && parentPort) {
  serve(workerData as RawBaselineOptions);
}
