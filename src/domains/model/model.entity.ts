import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { type JsonObject } from '../../graphql/scalars';
import { type ModelKind, type ModelTask, type RemoteProtocol } from './model.types';

export interface TensorSpecRow {
  readonly name: string;
  readonly type: string;
  readonly dims: number[];
}

/** A registered model. Soft-deleted: `deletedAt` hides it from listings and new inference. */
@Entity({ name: 'models' })
export class ModelEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  version!: string;

  @Column({ type: 'text' })
  kind!: ModelKind;

  @Column({ type: 'text' })
  task!: ModelTask;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ type: 'text', nullable: true })
  path!: string | null;

  @Column({ type: 'text', nullable: true })
  endpoint!: string | null;

  @Column({ type: 'text', name: 'remote_name', nullable: true })
  remoteName!: string | null;

  @Column({ type: 'text', name: 'remote_protocol', nullable: true })
  remoteProtocol!: RemoteProtocol | null;

  @Column({ type: 'jsonb' })
  inputs!: TensorSpecRow[];

  @Column({ type: 'jsonb' })
  outputs!: TensorSpecRow[];

  @Column({ type: 'jsonb', name: 'default_parameters' })
  defaultParameters!: JsonObject;

  @Column({ type: 'integer', name: 'max_batch_size', nullable: true })
  maxBatchSize!: number | null;

  @Column({ type: 'integer', name: 'max_queue_delay_ms', nullable: true })
  maxQueueDelayMs!: number | null;

  @Column({ type: 'boolean' })
  cacheable!: boolean;

  @Column({ type: 'integer', name: 'cache_ttl_seconds', nullable: true })
  cacheTtlSeconds!: number | null;

  @Column({ type: 'integer', name: 'rate_limit_per_minute', nullable: true })
  rateLimitPerMinute!: number | null;

  @CreateDateColumn({ type: 'timestamptz', precision: 3, name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', precision: 3, name: 'deleted_at', nullable: true })
  deletedAt!: Date | null;
}
