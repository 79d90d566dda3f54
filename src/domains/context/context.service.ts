import { randomUUID } from 'node:crypto';
import { QueryFailedError, type DataSource, type EntityManager } from 'typeorm';
import { type Config } from '../../config/env';
import { AppError, ErrorCode, badInput, conflict, forbidden, notFound } from '../../graphql/errors';
import { queryRows } from '../../db/sql';
import { isUuid, parseId } from '../../graphql/ids';
import { decodeCursor, encodeCursor, isIsoTimestamp } from '../../graphql/pagination';
import { type PubSub } from '../../realtime/pubsub';
import { createTopicStream } from '../../realtime/topic-stream';
import { Topic, type ContextEvent } from '../../realtime/topics';
import { type FieldEncryption } from '../../security/field-encryption';
import { Role } from '../user/role';
import { type User } from '../user/user.entity';
import { type ModelService } from '../model/model.service';
import { type UserService } from '../user/user.service';
import { type ContextCache } from './context.cache';
import { ErasureReceiptEntity, type ContextEntity } from './context.entity';
import { findSecretPaths, serializedSize, stripSecretPaths } from './context.guards';
import {
  type ContextFilter,
  type CreateContextInput,
  type DataContextInput,
  type EnvironmentContextInput,
  type UpdateContextInput,
  type UserContextInput,
} from './context.inputs';
import { contextFromRow, deserializeContext, serializeContext } from './context.row';
import { DeploymentEnvironment } from './context.types';
import {
  CURRENT_SCHEMA_VERSION,
  toStored,
  upgradeSections,
  type ContextSections,
  type StoredSections,
} from './context.upgrade';

/** A context as the API sees it: decrypted, in today's shape. */
export interface ContextRecord {
  readonly id: string;
  readonly userId: string;
  readonly modelId: string;
  readonly schemaVersion: number;
  readonly version: number;
  readonly lastSequence: number;
  readonly ttlSeconds: number | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly expiresAt: Date;
  readonly sections: ContextSections;
}

export interface ContextPage {
  readonly rows: ContextRecord[];
  readonly hasNextPage: boolean;
  readonly cursorOf: (row: ContextRecord) => string;
  readonly count: () => Promise<number>;
}

export interface DeletionCounts {
  readonly contexts: number;
  readonly historyEntries: number;
  readonly user: boolean;
}

export type ContextSettings = Config['contexts'];

const UNIQUE_FK_VIOLATION = '23503';
const MAX_JSON_DEPTH = 32;
const MAX_SOURCE_LENGTH = 512;
const MIN_TTL_SECONDS = 60;
const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;

const aad = (column: string, id: string) => `contexts.${column}:${id}`;

function depthOf(value: unknown, depth = 0): number {
  if (depth > MAX_JSON_DEPTH || typeof value !== 'object' || value === null) {
    return depth;
  }
  let max = depth;
  for (const child of Object.values(value)) {
    max = Math.max(max, depthOf(child, depth + 1));
    if (max > MAX_JSON_DEPTH) {
      break;
    }
  }
  return max;
}

function defaultSections(now: Date): ContextSections {
  return {
    user: { preferences: {}, demographics: null },
    environment: {
      timestamp: now.toISOString(),
      deploymentEnvironment: DeploymentEnvironment.PRODUCTION,
      serverLoad: 0,
      availableResources: {},
    },
    model: { parameters: {}, constraints: {} },
    data: { source: 'unknown', timestamp: null, qualityMetrics: {} },
    customAttributes: {},
  };
}

/** Section-patch semantics: a section given replaces that section (its omitted fields take defaults). */
function userSection(input: UserContextInput): ContextSections['user'] {
  return { preferences: input.preferences ?? {}, demographics: input.demographics ?? null };
}
function environmentSection(
  input: EnvironmentContextInput,
  now: Date,
): ContextSections['environment'] {
  return {
    timestamp: (input.timestamp ?? now).toISOString(),
    deploymentEnvironment: input.deploymentEnvironment ?? DeploymentEnvironment.PRODUCTION,
    serverLoad: input.serverLoad ?? 0,
    availableResources: input.availableResources ?? {},
  };
}
function dataSection(input: DataContextInput): ContextSections['data'] {
  return {
    source: input.source ?? 'unknown',
    timestamp: input.timestamp ? input.timestamp.toISOString() : null,
    qualityMetrics: input.qualityMetrics ?? {},
  };
}

function applyPatch(
  current: ContextSections,
  patch: UpdateContextInput,
  now: Date,
): ContextSections {
  return {
    user: patch.user ? userSection(patch.user) : current.user,
    environment: patch.environment
      ? environmentSection(patch.environment, now)
      : current.environment,
    model: patch.model
      ? { parameters: patch.model.parameters ?? {}, constraints: patch.model.constraints ?? {} }
      : current.model,
    data: patch.data ? dataSection(patch.data) : current.data,
    customAttributes: patch.customAttributes ?? current.customAttributes,
  };
}

/** Ranges and shapes the scalars cannot express; the error names the path. */
function validateSections(s: ContextSections): void {
  const load = s.environment.serverLoad;
  if (!Number.isFinite(load) || load < 0 || load > 1) {
    throw badInput('environment.serverLoad must be between 0 and 1', {
      path: 'environment.serverLoad',
    });
  }
  if (s.data.source.length === 0 || s.data.source.length > MAX_SOURCE_LENGTH) {
    throw badInput(`data.source must be 1–${MAX_SOURCE_LENGTH} characters`, {
      path: 'data.source',
    });
  }
  for (const [key, value] of Object.entries(s.data.qualityMetrics)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw badInput(`data.qualityMetrics.${key} must be a number`, {
        path: `data.qualityMetrics.${key}`,
      });
    }
  }
  const objects: [string, unknown][] = [
    ['user.preferences', s.user.preferences],
    ['user.demographics', s.user.demographics],
    ['environment.availableResources', s.environment.availableResources],
    ['model.parameters', s.model.parameters],
    ['model.constraints', s.model.constraints],
    ['customAttributes', s.customAttributes],
  ];
  for (const [path, value] of objects) {
    if (depthOf(value) > MAX_JSON_DEPTH) {
      throw badInput(`${path} is nested deeper than ${MAX_JSON_DEPTH} levels`, { path });
    }
  }
}

function validateTtl(ttl: number | null | undefined): number | null {
  if (ttl === null || ttl === undefined) {
    return null;
  }
  if (!Number.isInteger(ttl) || ttl < MIN_TTL_SECONDS || ttl > MAX_TTL_SECONDS) {
    throw badInput(`ttlSeconds must be between ${MIN_TTL_SECONDS} and ${MAX_TTL_SECONDS}`, {
      path: 'ttlSeconds',
    });
  }
  return ttl;
}

/** Prefixes an item's error with its place in a batch, keeping its code and extensions. */
function inItem(error: unknown, index: number): unknown {
  if (error instanceof AppError) {
    return new AppError(error.code, `updates[${index}]: ${error.message}`, {
      ...error.extensions,
      index,
    });
  }
  return error;
}

/**
 * Contexts: storage, access rules, section patches, optimistic concurrency, limits, expiry
 * and erasure. Knows nothing of GraphQL beyond the coded errors it throws.
 */
export class ContextService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly encryption: FieldEncryption,
    private readonly cache: ContextCache,
    private readonly pubSub: PubSub,
    private readonly models: ModelService,
    private readonly settings: ContextSettings,
    /** Told of an erasure: every replica forgets the user, and their streams end. */
    private readonly users: Pick<UserService, 'announce'>,
  ) {}

  // ------------------------------------------------------------------ reading

  /** The context if it exists, has not expired, and the viewer may see it. */
  async get(viewer: User, id: string): Promise<ContextRecord | null> {
    const row = await this.loadRow(parseId(id));
    if (!row) {
      return null;
    }
    this.assertAccess(viewer, row.userId);
    return this.decode(await this.ensureCurrent(row));
  }

  /** Owner or admin, or FORBIDDEN. Exported for the subscription and inference paths. */
  assertAccess(viewer: User, ownerId: string): void {
    if (viewer.role !== Role.ADMIN && viewer.id !== ownerId) {
      throw forbidden('This context belongs to another user');
    }
  }

  private async loadRow(id: string): Promise<ContextEntity | null> {
    let row = await this.cache.get(id);
    if (row === undefined) {
      const rows: Record<string, unknown>[] = await queryRows(
        this.dataSource,
        'SELECT * FROM contexts WHERE id = $1',
        [id],
      );
      row = rows[0] ? contextFromRow(rows[0]) : null;
      if (row) {
        await this.cache.put(row);
      }
    }
    // Expired rows are invisible at once, before the sweeper gets to them.
    return row && row.expiresAt.getTime() > Date.now() ? row : null;
  }

  /** Decrypts and upgrades a stored row into today's shape. */
  decode(row: ContextEntity): ContextRecord {
    const { sections } = upgradeSections(
      row.schemaVersion,
      this.storedSections(row),
      row.createdAt,
    );
    return {
      id: row.id,
      userId: row.userId,
      modelId: row.modelId,
      schemaVersion: CURRENT_SCHEMA_VERSION,
      version: row.version,
      lastSequence: row.lastSequence,
      ttlSeconds: row.ttlSeconds,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
      expiresAt: row.expiresAt,
      sections,
    };
  }

  /** A page of the viewer's contexts (admins: anyone's), newest first, keyset on (updated_at, id). */
  async page(
    viewer: User,
    filter: ContextFilter | null | undefined,
    size: number,
    after: string | null | undefined,
  ): Promise<ContextPage> {
    const where = ['expires_at > now()'];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (viewer.role !== Role.ADMIN) {
      if (filter?.userId && filter.userId !== viewer.id) {
        throw forbidden('Only admins may list the contexts of another user');
      }
      where.push(`user_id = ${param(viewer.id)}`);
    } else if (filter?.userId) {
      where.push(`user_id = ${param(parseId(filter.userId, 'filter.userId'))}`);
    }
    if (filter?.modelId) {
      where.push(`model_id = ${param(parseId(filter.modelId, 'filter.modelId'))}`);
    }
    if (filter?.updatedSince) {
      where.push(`updated_at >= ${param(filter.updatedSince)}`);
    }
    const countWhere = where.join(' AND ');
    const countParams = [...params];
    if (after) {
      const [updatedAt, id] = this.decodeContextCursor(after);
      where.push(`(updated_at, id) < (${param(updatedAt)}, ${param(id)})`);
    }
    const rows: Record<string, unknown>[] = await queryRows(
      this.dataSource,
      `SELECT * FROM contexts WHERE ${where.join(' AND ')}
       ORDER BY updated_at DESC, id DESC LIMIT ${param(size + 1)}`,
      params,
    );
    const records = await this.decodeAll(rows.slice(0, size).map(contextFromRow));
    return {
      rows: records,
      hasNextPage: rows.length > size,
      cursorOf: (r) => encodeCursor([r.updatedAt.toISOString(), r.id]),
      count: async () => {
        const [{ count }] = await queryRows<{ count: number }>(
          this.dataSource,
          `SELECT count(*)::int AS count FROM contexts WHERE ${countWhere}`,
          countParams,
        );
        return count as number;
      },
    };
  }

  /**
   * One query for the first page of contexts of many users (User.contexts over a list of
   * users): a window function numbers each user's rows.
   */
  async pagesByUser(
    userIds: readonly string[],
    size: number,
    after: string | null | undefined,
  ): Promise<Map<string, { rows: ContextRecord[]; hasNextPage: boolean }>> {
    const params: unknown[] = [userIds.filter(isUuid), size + 1];
    let keyset = '';
    if (after) {
      const [updatedAt, id] = this.decodeContextCursor(after);
      params.push(updatedAt, id);
      keyset = 'AND (updated_at, id) < ($3, $4)';
    }
    const raw: Record<string, unknown>[] = await queryRows(
      this.dataSource,
      `SELECT * FROM (
         SELECT c.*, row_number() OVER (PARTITION BY user_id ORDER BY updated_at DESC, id DESC) AS rn
         FROM contexts c WHERE user_id = ANY($1) AND expires_at > now() ${keyset}
       ) t WHERE rn <= $2 ORDER BY user_id, rn`,
      params,
    );
    const records = await this.decodeAll(raw.map(contextFromRow));
    const result = new Map(
      userIds.map((id) => [id, { rows: [] as ContextRecord[], hasNextPage: false }]),
    );
    for (const record of records) {
      const page = result.get(record.userId)!;
      if (page.rows.length < size) {
        page.rows.push(record);
      } else {
        page.hasNextPage = true;
      }
    }
    return result;
  }

  async countsByUser(userIds: readonly string[]): Promise<Map<string, number>> {
    const rows: { user_id: string; count: number }[] = await queryRows(
      this.dataSource,
      `SELECT user_id, count(*)::int AS count FROM contexts
       WHERE user_id = ANY($1) AND expires_at > now() GROUP BY user_id`,
      [userIds.filter(isUuid)],
    );
    return new Map(rows.map((r) => [r.user_id, r.count]));
  }

  contextCursor(record: ContextRecord): string {
    return encodeCursor([record.updatedAt.toISOString(), record.id]);
  }

  private decodeContextCursor(cursor: string): [string, string] {
    const [updatedAt, id] = decodeCursor(cursor, 2);
    if (!isIsoTimestamp(updatedAt) || !isUuid(String(id))) {
      throw badInput('Invalid cursor', { argument: 'after' });
    }
    return [updatedAt, String(id)];
  }

  private async decodeAll(rows: ContextEntity[]): Promise<ContextRecord[]> {
    const current = await Promise.all(rows.map((row) => this.ensureCurrent(row)));
    return current.map((row) => this.decode(row));
  }

  /**
   * The context's new state after each committed write, on whichever replica it happened;
   * completes when the context is deleted. Listens before checking access so no write
   * between the check and the first message is lost.
   */
  async watch(viewer: User, id: string): Promise<AsyncIterableIterator<ContextRecord>> {
    const contextId = parseId(id, 'contextId');
    const stream = await createTopicStream<ContextRecord>(
      this.pubSub,
      Topic.context(contextId),
      (message) => {
        const event = message as ContextEvent;
        return event.type === 'deleted'
          ? { done: true }
          : { value: this.decode(deserializeContext(event.row)) };
      },
    );
    try {
      const row = await this.loadRow(contextId);
      if (!row) {
        throw notFound('Context');
      }
      this.assertAccess(viewer, row.userId);
    } catch (error) {
      await stream.return?.();
      throw error;
    }
    return stream;
  }

  /** Erasure receipts, oldest first (admins only, by rule). */
  async receipts(
    size: number,
    after: string | null | undefined,
  ): Promise<{
    rows: ErasureReceiptEntity[];
    cursorOf: (r: ErasureReceiptEntity) => string;
    count: () => Promise<number>;
  }> {
    const repo = this.dataSource.getRepository(ErasureReceiptEntity);
    const qb = repo.createQueryBuilder('r').orderBy('r.createdAt', 'ASC').addOrderBy('r.id', 'ASC');
    if (after) {
      const [createdAt, id] = this.decodeContextCursor(after);
      qb.where('(r.created_at, r.id) > (:createdAt, :id)', { createdAt, id });
    }
    return {
      rows: await qb.limit(size + 1).getMany(),
      cursorOf: (r) => encodeCursor([r.createdAt.toISOString(), r.id]),
      count: () => repo.count(),
    };
  }

  // ------------------------------------------------------------------ writing

  /** Creates a context; with the strip policy, returns the credential paths it dropped. */
  async create(
    viewer: User,
    input: CreateContextInput,
  ): Promise<{ record: ContextRecord; removedPaths: string[] }> {
    const ownerId = input.userId ? parseId(input.userId, 'input.userId') : viewer.id;
    if (ownerId !== viewer.id && viewer.role !== Role.ADMIN) {
      throw forbidden('Only admins may create contexts for another user');
    }
    const model = await this.models.findActive(input.model.modelId);
    if (!model) {
      throw badInput('input.model.modelId: no such model', { path: 'model.modelId' });
    }
    const now = new Date();
    const base = defaultSections(now);
    const { sections, removedPaths } = this.guard({
      user: input.user ? userSection(input.user) : base.user,
      environment: input.environment
        ? environmentSection(input.environment, now)
        : base.environment,
      model: {
        parameters: input.model.parameters ?? {},
        constraints: input.model.constraints ?? {},
      },
      data: input.data ? dataSection(input.data) : base.data,
      customAttributes: input.customAttributes ?? {},
    });
    const ttl = validateTtl(input.ttlSeconds);
    const id = randomUUID();
    const stored = this.encode(id, sections);
    let raw: Record<string, unknown>[];
    try {
      raw = await queryRows(
        this.dataSource,
        `INSERT INTO contexts (id, user_id, model_id, schema_version, user_data, environment,
           model_data, data, custom_attributes, ttl_seconds, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(secs => $11))
         RETURNING *`,
        [
          id,
          ownerId,
          model.id,
          CURRENT_SCHEMA_VERSION,
          ...stored,
          ttl,
          ttl ?? this.settings.defaultTtlSeconds,
        ],
      );
    } catch (error) {
      if (
        error instanceof QueryFailedError &&
        (error.driverError as { code?: string }).code === UNIQUE_FK_VIOLATION
      ) {
        throw badInput('input.userId: no such user', { path: 'userId' });
      }
      throw error;
    }
    const row = contextFromRow(raw[0]!);
    await this.afterWrite([row]);
    return { record: this.decode(row), removedPaths };
  }

  async update(
    viewer: User,
    id: string,
    patch: UpdateContextInput,
    expectedVersion: number | null | undefined,
  ): Promise<{ record: ContextRecord; removedPaths: string[] }> {
    const contextId = parseId(id);
    const result = await this.dataSource.transaction((em) =>
      this.updateIn(em, viewer, contextId, patch, expectedVersion),
    );
    await this.afterWrite([result.row]);
    return { record: this.decode(result.row), removedPaths: result.removedPaths };
  }

  /** All items in one transaction: one bad item and nothing is written; the error names it. */
  async updateMany(
    viewer: User,
    updates: readonly { id: string; patch: UpdateContextInput; expectedVersion?: number | null }[],
  ): Promise<{ records: ContextRecord[]; removedPaths: string[] }> {
    if (updates.length > this.settings.maxBatchUpdates) {
      throw badInput(`At most ${this.settings.maxBatchUpdates} updates per call`, {
        argument: 'updates',
      });
    }
    const ids = updates.map((u, index) => {
      try {
        return parseId(u.id);
      } catch (error) {
        throw inItem(error, index);
      }
    });
    const duplicate = ids.findIndex((id, i) => ids.indexOf(id) !== i);
    if (duplicate >= 0) {
      throw inItem(badInput('the same context appears twice in one batch'), duplicate);
    }
    const results = await this.dataSource.transaction(async (em) => {
      // Lock every row up front in id order, so concurrent batches cannot deadlock.
      await queryRows(em, 'SELECT id FROM contexts WHERE id = ANY($1) ORDER BY id FOR UPDATE', [
        ids,
      ]);
      const out = [];
      for (const [index, update] of updates.entries()) {
        try {
          out.push(
            await this.updateIn(em, viewer, ids[index]!, update.patch, update.expectedVersion),
          );
        } catch (error) {
          throw inItem(error, index);
        }
      }
      return out;
    });
    await this.afterWrite(results.map((r) => r.row));
    return {
      records: results.map((r) => this.decode(r.row)),
      removedPaths: results.flatMap((r, i) => r.removedPaths.map((p) => `updates[${i}].${p}`)),
    };
  }

  private async updateIn(
    em: EntityManager,
    viewer: User,
    id: string,
    patch: UpdateContextInput,
    expectedVersion: number | null | undefined,
  ): Promise<{ row: ContextEntity; removedPaths: string[] }> {
    const raw: Record<string, unknown>[] = await queryRows(
      em,
      'SELECT * FROM contexts WHERE id = $1 AND expires_at > now() FOR UPDATE',
      [id],
    );
    if (!raw[0]) {
      throw notFound('Context');
    }
    const locked = contextFromRow(raw[0]);
    this.assertAccess(viewer, locked.userId);
    const current = await this.upgradeLocked(em, locked);
    if (
      expectedVersion !== null &&
      expectedVersion !== undefined &&
      expectedVersion !== current.version
    ) {
      throw conflict(
        `Context was modified: expected version ${expectedVersion}, current is ${current.version}`,
        {
          currentVersion: current.version,
          expectedVersion,
        },
      );
    }
    let modelId = current.modelId;
    if (patch.model) {
      const model = await this.models.findActive(patch.model.modelId);
      if (!model) {
        throw badInput('patch.model.modelId: no such model', { path: 'model.modelId' });
      }
      modelId = model.id;
    }
    const { sections, removedPaths } = this.guard(
      applyPatch(this.decode(current).sections, patch, new Date()),
    );
    const ttl =
      patch.ttlSeconds !== undefined && patch.ttlSeconds !== null
        ? validateTtl(patch.ttlSeconds)
        : current.ttlSeconds;
    const updated: Record<string, unknown>[] = await queryRows(
      em,
      `UPDATE contexts SET model_id = $2, schema_version = $3, user_data = $4, environment = $5,
         model_data = $6, data = $7, custom_attributes = $8, ttl_seconds = $9,
         version = version + 1, updated_at = now(), expires_at = now() + make_interval(secs => $10)
       WHERE id = $1 AND version = $11
       RETURNING *`,
      [
        id,
        modelId,
        CURRENT_SCHEMA_VERSION,
        ...this.encode(id, sections),
        ttl,
        ttl ?? this.settings.defaultTtlSeconds,
        current.version,
      ],
    );
    return { row: contextFromRow(updated[0]!), removedPaths };
  }

  async delete(viewer: User, id: string): Promise<boolean> {
    const contextId = parseId(id);
    await this.dataSource.transaction(async (em) => {
      const rows: { user_id: string }[] = await queryRows(
        em,
        'SELECT user_id FROM contexts WHERE id = $1 AND expires_at > now() FOR UPDATE',
        [contextId],
      );
      if (!rows[0]) {
        throw notFound('Context');
      }
      this.assertAccess(viewer, rows[0].user_id);
      await queryRows(em, 'DELETE FROM contexts WHERE id = $1', [contextId]);
    });
    await this.afterDelete([contextId]);
    return true;
  }

  /**
   * Right to erasure: the user's contexts, their history and the user, in one transaction,
   * with a receipt (who asked, when, how much) kept for accountability.
   */
  async eraseUser(viewer: User, userId: string): Promise<DeletionCounts> {
    const subjectId = parseId(userId, 'userId');
    if (viewer.role !== Role.ADMIN && viewer.id !== subjectId) {
      throw forbidden('Only admins may erase another user');
    }
    const { contextIds, counts } = await this.dataSource.transaction(async (em) => {
      const users: { role: Role }[] = await queryRows(
        em,
        'SELECT role FROM users WHERE id = $1 FOR UPDATE',
        [subjectId],
      );
      if (!users[0]) {
        throw notFound('User');
      }
      if (users[0].role === Role.ADMIN) {
        const [{ admins }] = await queryRows<{ admins: number }>(
          em,
          `SELECT count(*)::int AS admins FROM users WHERE role = 'ADMIN' AND NOT disabled`,
        );
        if (admins <= 1) {
          throw badInput('The last admin cannot be erased', { argument: 'userId' });
        }
      }
      const [{ history }] = await queryRows<{ history: number }>(
        em,
        `SELECT count(*)::int AS history FROM history_entries h
         JOIN contexts c ON c.id = h.context_id WHERE c.user_id = $1`,
        [subjectId],
      );
      const deleted: { id: string }[] = await queryRows(
        em,
        'DELETE FROM contexts WHERE user_id = $1 RETURNING id',
        [subjectId],
      );
      await queryRows(em, 'DELETE FROM users WHERE id = $1', [subjectId]);
      const counts = { contexts: deleted.length, historyEntries: history as number, user: true };
      await queryRows(
        em,
        `INSERT INTO erasure_receipts (requested_by, self_requested, contexts, history_entries, user_deleted)
         VALUES ($1, $2, $3, $4, $5)`,
        [viewer.id, viewer.id === subjectId, counts.contexts, counts.historyEntries, counts.user],
      );
      return { contextIds: deleted.map((d) => d.id), counts };
    });
    await this.afterDelete(contextIds);
    await this.users.announce({ type: 'erased', userId: subjectId });
    return counts;
  }

  /**
   * Deletes expired contexts in batches; `SKIP LOCKED` lets several replicas sweep at once
   * without waiting on each other or deleting a row twice. Returns how many were deleted.
   */
  async sweepExpired(): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted: { id: string }[] = await queryRows(
        this.dataSource,
        `DELETE FROM contexts WHERE id IN (
           SELECT id FROM contexts WHERE expires_at <= now()
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
         ) RETURNING id`,
        [this.settings.sweepBatchSize],
      );
      total += deleted.length;
      await this.afterDelete(deleted.map((d) => d.id));
      if (deleted.length < this.settings.sweepBatchSize) {
        return total;
      }
    }
  }

  // ------------------------------------------------------------------ helpers

  /** Secret keys refused or stripped by policy, then the size limit; nothing is written on failure. */
  private guard(sections: ContextSections): { sections: ContextSections; removedPaths: string[] } {
    const checked = [
      ['user', sections.user],
      ['data', sections.data],
      ['customAttributes', sections.customAttributes],
    ] as const;
    const found = checked.flatMap(([key, value]) => findSecretPaths(value, key));
    if (found.length && this.settings.secretPolicy === 'reject') {
      throw badInput(`Credentials may not be stored in a context: ${found.join(', ')}`, {
        paths: found,
      });
    }
    let guarded = sections;
    const removedPaths: string[] = [];
    for (const [key, value] of found.length ? checked : []) {
      const stripped = stripSecretPaths(value, key);
      guarded = { ...guarded, [key]: stripped.value };
      removedPaths.push(...stripped.removed);
    }
    validateSections(guarded);
    const size = serializedSize(guarded);
    if (size > this.settings.maxBytes) {
      throw new AppError(
        ErrorCode.CONTEXT_TOO_LARGE,
        `Context is ${size} bytes; the limit is ${this.settings.maxBytes}`,
        { size, limit: this.settings.maxBytes },
      );
    }
    return { sections: guarded, removedPaths };
  }

  /** The row's sections as stored, ciphertext columns decrypted. */
  private storedSections(row: ContextEntity): StoredSections {
    return {
      userData: this.encryption.decryptJson(row.userData, aad('user_data', row.id)),
      environment: row.environment,
      modelData: row.modelData,
      data: row.data,
      customAttributes: this.encryption.decryptJson(
        row.customAttributes,
        aad('custom_attributes', row.id),
      ),
    };
  }

  /** Column values in INSERT/UPDATE order: user_data, environment, model_data, data, custom_attributes. */
  private encode(id: string, sections: ContextSections): unknown[] {
    const stored = toStored(sections);
    return [
      this.encryption.encryptJson(stored.userData, aad('user_data', id)),
      JSON.stringify(stored.environment),
      JSON.stringify(stored.modelData),
      JSON.stringify(stored.data),
      this.encryption.encryptJson(stored.customAttributes, aad('custom_attributes', id)),
    ];
  }

  /**
   * Rows written by an older schema version are rewritten in today's shape the first time
   * they are read (the version-0 `session_history` becomes history entries), under the row
   * lock so concurrent readers upgrade once.
   */
  private async ensureCurrent(row: ContextEntity): Promise<ContextEntity> {
    if (row.schemaVersion >= CURRENT_SCHEMA_VERSION) {
      return row;
    }
    const upgraded = await this.dataSource.transaction(async (em) => {
      const raw: Record<string, unknown>[] = await queryRows(
        em,
        'SELECT * FROM contexts WHERE id = $1 FOR UPDATE',
        [row.id],
      );
      return raw[0] ? this.upgradeLocked(em, contextFromRow(raw[0])) : null;
    });
    if (!upgraded) {
      return row;
    }
    await this.cache.put(upgraded);
    return upgraded;
  }

  /** Rewrites a row locked by the caller in today's shape; a no-op for current rows. */
  private async upgradeLocked(em: EntityManager, locked: ContextEntity): Promise<ContextEntity> {
    if (locked.schemaVersion >= CURRENT_SCHEMA_VERSION) {
      return locked;
    }
    const { sections, legacyHistory } = upgradeSections(
      locked.schemaVersion,
      this.storedSections(locked),
      locked.createdAt,
    );
    let sequence = locked.lastSequence;
    for (const turn of legacyHistory.slice(-this.settings.historyLimit)) {
      sequence += 1;
      const entryId = randomUUID();
      await queryRows(
        em,
        `INSERT INTO history_entries (id, context_id, sequence, model_id, input, output, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::timestamptz, now()))`,
        [
          entryId,
          locked.id,
          sequence,
          locked.modelId,
          this.encryption.encryptJson(turn.input ?? null, `history_entries.input:${entryId}`),
          this.encryption.encryptJson(turn.output ?? null, `history_entries.output:${entryId}`),
          turn.timestamp,
        ],
      );
    }
    const updated: Record<string, unknown>[] = await queryRows(
      em,
      `UPDATE contexts SET schema_version = $2, user_data = $3, environment = $4, model_data = $5,
         data = $6, custom_attributes = $7, last_sequence = $8
       WHERE id = $1 RETURNING *`,
      [locked.id, CURRENT_SCHEMA_VERSION, ...this.encode(locked.id, sections), sequence],
    );
    return contextFromRow(updated[0]!);
  }

  /** After commit: refresh the cache and tell every replica. */
  private async afterWrite(rows: readonly ContextEntity[]): Promise<void> {
    for (const row of rows) {
      await this.cache.put(row);
      await this.publish(row.id, { type: 'updated', row: serializeContext(row) });
    }
  }

  private async afterDelete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) {
      return;
    }
    await this.cache.forget(ids);
    for (const id of ids) {
      await this.publish(id, { type: 'deleted', contextId: id });
    }
  }

  private async publish(contextId: string, event: ContextEvent): Promise<void> {
    await this.pubSub.publish(Topic.context(contextId), event);
  }
}
