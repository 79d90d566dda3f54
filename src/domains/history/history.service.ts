import { randomUUID } from 'node:crypto';
import { type DataSource } from 'typeorm';
import { queryRows } from '../../db/sql';
import { badInput, notFound } from '../../graphql/errors';
import { type PubSub } from '../../realtime/pubsub';
import { Topic } from '../../realtime/topics';
import { isUuid } from '../../graphql/ids';
import { MAX_INT32, decodeCursor, encodeCursor } from '../../graphql/pagination';
import { type JsonObject } from '../../graphql/scalars';
import { type FieldEncryption } from '../../security/field-encryption';
import { HistoryEntry } from './history.types';

export interface HistoryArgs {
  readonly first?: number | null;
  readonly after?: string | null;
  readonly last?: number | null;
  readonly before?: string | null;
}

/** Relay arguments reduced to one direction, a size and a sequence bound. */
export interface HistoryWindow {
  readonly direction: 'forward' | 'backward';
  readonly size: number;
  readonly bound: number | null;
}

export interface HistoryPage {
  readonly entries: HistoryEntry[];
  readonly hasNextPage: boolean;
  readonly hasPreviousPage: boolean;
}

export const DEFAULT_HISTORY_PAGE = 20;

export const historyCursor = (sequence: number) => encodeCursor([sequence]);

function serializeHistoryRow(row: Record<string, unknown>): SerializedHistoryEntry {
  return {
    id: row.id as string,
    context_id: row.context_id as string,
    sequence: Number(row.sequence),
    model_id: row.model_id as string,
    input: (row.input as Buffer).toString('base64'),
    output: (row.output as Buffer).toString('base64'),
    parameters: JSON.stringify(row.parameters),
    latency_ms: Number(row.latency_ms),
    created_at: new Date(row.created_at as string | Date).toISOString(),
  };
}

export interface NewHistoryEntry {
  readonly contextId: string;
  readonly modelId: string;
  readonly input: unknown;
  readonly output: unknown;
  readonly parameters: JsonObject;
  readonly latencyMs: number;
}

/** An entry as published to subscribers: the stored form, ciphertexts base64. */
export type SerializedHistoryEntry = Record<string, string | number>;

/** History entries of contexts, read many contexts at a time; input and output are decrypted. */
export class HistoryService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly encryption: FieldEncryption,
    private readonly maxPageSize: number,
    private readonly pubSub?: PubSub,
  ) {}

  /**
   * Appends a turn with the next gapless sequence: the context row's lock (UPDATE … RETURNING)
   * serialises appenders of one context; entries beyond `limit` go in the same transaction.
   * Published to `history:<contextId>` after commit, whole, so fan-out reads no database.
   */
  async append(entry: NewHistoryEntry, limit: number): Promise<HistoryEntry> {
    const id = randomUUID();
    // One round trip (migrations/1764000200000-append-history-function.ts): numbered under
    // the context row's lock, inserted, and the entries beyond the limit deleted.
    const [row] = await queryRows(
      this.dataSource,
      'SELECT * FROM append_history_entry($1, $2, $3, $4, $5, $6::jsonb, $7, $8)',
      [
        id,
        entry.contextId,
        entry.modelId,
        this.encryption.encryptJson(entry.input ?? null, `history_entries.input:${id}`),
        this.encryption.encryptJson(entry.output ?? null, `history_entries.output:${id}`),
        JSON.stringify(entry.parameters),
        entry.latencyMs,
        limit,
      ],
    );
    if (!row) {
      throw notFound('Context');
    }
    await this.pubSub?.publish(Topic.history(entry.contextId), serializeHistoryRow(row));
    return this.toEntry(row);
  }

  /** A published entry back as the API sees it. */
  fromSerialized(s: SerializedHistoryEntry): HistoryEntry {
    // Pub/sub hands the same parsed message to every subscriber of the context: decrypt once.
    let entry = this.decoded.get(s);
    if (!entry) {
      entry = this.decodeSerialized(s);
      this.decoded.set(s, entry);
    }
    return entry;
  }

  private readonly decoded = new WeakMap<SerializedHistoryEntry, HistoryEntry>();

  private decodeSerialized(s: SerializedHistoryEntry): HistoryEntry {
    return this.toEntry({
      ...s,
      input: Buffer.from(String(s.input), 'base64'),
      output: Buffer.from(String(s.output), 'base64'),
      parameters: JSON.parse(String(s.parameters)),
    });
  }

  /**
   * `first`/`after` walk from the oldest entry, `last`/`before` from the newest; edges are
   * always in sequence order. With neither, the newest page.
   */
  window(args: HistoryArgs): HistoryWindow {
    if ((args.first ?? null) !== null && (args.last ?? null) !== null) {
      throw badInput('Give either first or last, not both', { argument: 'first' });
    }
    const forward =
      (args.first ?? null) !== null ||
      ((args.after ?? null) !== null && (args.last ?? null) === null);
    const size = forward
      ? (args.first ?? DEFAULT_HISTORY_PAGE)
      : (args.last ?? DEFAULT_HISTORY_PAGE);
    if (!Number.isInteger(size) || size < 0 || size > this.maxPageSize) {
      throw badInput(`${forward ? 'first' : 'last'} must be between 0 and ${this.maxPageSize}`, {
        argument: forward ? 'first' : 'last',
      });
    }
    const cursor = forward ? args.after : args.before;
    let bound: number | null = null;
    if (cursor) {
      const [sequence] = decodeCursor(cursor, 1);
      if (
        !Number.isInteger(sequence) ||
        (sequence as number) < 0 ||
        (sequence as number) > MAX_INT32
      ) {
        throw badInput('Invalid cursor', { argument: forward ? 'after' : 'before' });
      }
      bound = sequence as number;
    }
    return { direction: forward ? 'forward' : 'backward', size, bound };
  }

  /** One query for the pages of every context: a window function numbers each context's rows. */
  async pages(contextIds: readonly string[], w: HistoryWindow): Promise<Map<string, HistoryPage>> {
    const forward = w.direction === 'forward';
    const params: unknown[] = [contextIds.filter(isUuid), w.size + 1];
    let bound = '';
    if (w.bound !== null) {
      params.push(w.bound);
      bound = `AND sequence ${forward ? '>' : '<'} $3`;
    }
    const rows: Record<string, unknown>[] = await queryRows(
      this.dataSource,
      `SELECT * FROM (
         SELECT h.*, row_number() OVER (PARTITION BY context_id ORDER BY sequence ${forward ? 'ASC' : 'DESC'}) AS rn
         FROM history_entries h WHERE context_id = ANY($1) ${bound}
       ) t WHERE rn <= $2`,
      params,
    );
    const grouped = new Map<string, HistoryEntry[]>(contextIds.map((id) => [id, []]));
    for (const row of rows) {
      grouped.get(row.context_id as string)?.push(this.toEntry(row));
    }
    const result = new Map<string, HistoryPage>();
    for (const [id, entries] of grouped) {
      const more = entries.length > w.size;
      const page = entries.slice(0, w.size).sort((a, b) => a.sequence - b.sequence);
      result.set(id, {
        entries: page,
        hasNextPage: forward ? more : w.bound !== null,
        hasPreviousPage: forward ? w.bound !== null : more,
      });
    }
    return result;
  }

  async counts(contextIds: readonly string[]): Promise<Map<string, number>> {
    const rows: { context_id: string; count: number }[] = await queryRows(
      this.dataSource,
      `SELECT context_id, count(*)::int AS count FROM history_entries
       WHERE context_id = ANY($1) GROUP BY context_id`,
      [contextIds.filter(isUuid)],
    );
    return new Map(rows.map((r) => [r.context_id, r.count]));
  }

  /** A raw `history_entries` row as the API sees it. */
  toEntry(row: Record<string, unknown>): HistoryEntry {
    const id = row.id as string;
    return Object.assign(new HistoryEntry(), {
      id,
      contextId: row.context_id as string,
      sequence: Number(row.sequence),
      createdAt: new Date(row.created_at as string | Date),
      modelId: row.model_id as string,
      input: this.encryption.decryptJson(row.input as Buffer, `history_entries.input:${id}`),
      output: this.encryption.decryptJson(row.output as Buffer, `history_entries.output:${id}`),
      parameters: row.parameters as JsonObject,
      latencyMs: Number(row.latency_ms),
    });
  }
}
