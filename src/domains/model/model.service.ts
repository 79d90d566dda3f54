import { In, IsNull, type DataSource, type Repository } from 'typeorm';
import { NO_ROW_COPIES, ReplicaRowCache, type RowCacheSettings } from '../../cache/row-cache';
import { badInput } from '../../graphql/errors';
import { isUuid, parseId } from '../../graphql/ids';
import { type PubSub } from '../../realtime/pubsub';
import { Topic } from '../../realtime/topics';
import { ModelEntity } from './model.entity';
import { Model } from './model.types';

/** The GraphQL face of a model row. `executionProvider` is known once a runtime loads it. */
export function toModel(row: ModelEntity, executionProvider: string | null = null): Model {
  return Object.assign(new Model(), {
    id: row.id,
    name: row.name,
    version: row.version,
    kind: row.kind,
    task: row.task,
    description: row.description,
    inputs: row.inputs,
    outputs: row.outputs,
    defaultParameters: row.defaultParameters,
    cacheable: row.cacheable,
    cacheTtlSeconds: row.cacheTtlSeconds,
    rateLimitPerMinute: row.rateLimitPerMinute,
    executionProvider,
    endpoint: row.endpoint,
    remoteProtocol: row.remoteProtocol,
    createdAt: row.createdAt,
  });
}

/** A row to insert: everything but the generated columns. */
export type NewModel = Omit<ModelEntity, 'id' | 'createdAt' | 'deletedAt' | 'inputs' | 'outputs'> &
  Partial<Pick<ModelEntity, 'inputs' | 'outputs'>>;

/** The `models` table. Validation and loading live in the inference registry. */
export class ModelService {
  private readonly repo: Repository<ModelEntity>;
  private readonly rows: ReplicaRowCache<ModelEntity>;
  private readonly changeListeners: ((modelId: string) => void)[] = [];

  constructor(dataSource: DataSource, pubSub: PubSub, rowCache: RowCacheSettings = NO_ROW_COPIES) {
    this.repo = dataSource.getRepository(ModelEntity);
    this.rows = new ReplicaRowCache({
      ...rowCache,
      topic: Topic.rowChanged('models'),
      pubSub,
      load: (ids) => {
        const valid = ids.filter(isUuid);
        return valid.length ? this.repo.findBy({ id: In(valid) }) : Promise.resolve([]);
      },
      idOf: (model) => model.id,
      onChange: (id) => this.changeListeners.forEach((listener) => listener(id)),
    });
  }

  /** Follows model changes made on other replicas. */
  start(): Promise<void> {
    return this.rows.start();
  }

  stop(): void {
    this.rows.stop();
  }

  /**
   * Called when a model row changes here or on another replica (to release its session).
   * Deletion is the only change a model row has.
   */
  onChanged(listener: (modelId: string) => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * Includes soft-deleted models: contexts and history that name them still resolve. Through
   * this replica's row cache (model rows change only when deleted, which every replica hears).
   */
  findByIds(ids: readonly string[]): Promise<(ModelEntity | null)[]> {
    return this.rows.getMany(ids);
  }

  /** A model that new contexts and inference may use: exists and is not deleted. */
  async findActive(id: string): Promise<ModelEntity | null> {
    const model = isUuid(id) ? await this.rows.get(id) : null;
    return model && model.deletedAt === null ? model : null;
  }

  /** By id, or by name (+ version; the newest registration when omitted). */
  async find(args: {
    id?: string | null;
    name?: string | null;
    version?: string | null;
  }): Promise<ModelEntity | null> {
    if (args.id) {
      return this.repo.findOneBy({ id: parseId(args.id), deletedAt: IsNull() });
    }
    if (!args.name) {
      throw badInput('Give a model id, or a name (and optionally a version)');
    }
    return this.repo.findOne({
      where: {
        name: args.name,
        deletedAt: IsNull(),
        ...(args.version ? { version: args.version } : {}),
      },
      order: { createdAt: 'DESC' },
    });
  }

  async insert(row: NewModel): Promise<ModelEntity> {
    const entity = Object.assign(new ModelEntity(), row, {
      inputs: row.inputs ?? [],
      outputs: row.outputs ?? [],
      deletedAt: null,
    });
    return this.repo.save(entity);
  }

  /** Hides the model from listings and new use; old contexts and history still resolve it. */
  async softDelete(id: string): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ deletedAt: () => 'now()' })
      .where('id = :id AND deleted_at IS NULL', { id })
      .execute();
    const deleted = (result.affected ?? 0) > 0;
    if (deleted) {
      await this.rows.changed(id);
    }
    return deleted;
  }

  list(): Promise<ModelEntity[]> {
    return this.repo.find({
      where: { deletedAt: IsNull() },
      order: { name: 'ASC', createdAt: 'DESC' },
    });
  }
}
