import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { type JsonObject } from '../../graphql/scalars';

/**
 * One row of `contexts`. The JSON sections keep the shape of their `schemaVersion`
 * (context.upgrade.ts turns older shapes into today's); `userData` and `customAttributes`
 * are ciphertexts.
 */
@Entity({ name: 'contexts' })
export class ContextEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'uuid', name: 'user_id' })
  userId!: string;

  @Column({ type: 'uuid', name: 'model_id' })
  modelId!: string;

  @Column({ type: 'smallint', name: 'schema_version' })
  schemaVersion!: number;

  @Column({ type: 'integer' })
  version!: number;

  @Column({ type: 'integer', name: 'last_sequence' })
  lastSequence!: number;

  @Column({ type: 'bytea', name: 'user_data' })
  userData!: Buffer;

  @Column({ type: 'jsonb' })
  environment!: JsonObject;

  @Column({ type: 'jsonb', name: 'model_data' })
  modelData!: JsonObject;

  @Column({ type: 'jsonb' })
  data!: JsonObject;

  @Column({ type: 'bytea', name: 'custom_attributes' })
  customAttributes!: Buffer;

  @Column({ type: 'integer', name: 'ttl_seconds', nullable: true })
  ttlSeconds!: number | null;

  @Column({ type: 'timestamptz', precision: 3, name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', precision: 3, name: 'updated_at' })
  updatedAt!: Date;

  @Column({ type: 'timestamptz', precision: 3, name: 'expires_at' })
  expiresAt!: Date;
}

/** One recorded inference turn; `input` and `output` are ciphertexts. */
@Entity({ name: 'history_entries' })
export class HistoryEntryEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'uuid', name: 'context_id' })
  contextId!: string;

  @Column({ type: 'integer' })
  sequence!: number;

  @Column({ type: 'uuid', name: 'model_id' })
  modelId!: string;

  @Column({ type: 'bytea' })
  input!: Buffer;

  @Column({ type: 'bytea' })
  output!: Buffer;

  @Column({ type: 'jsonb' })
  parameters!: JsonObject;

  @Column({ type: 'double precision', name: 'latency_ms' })
  latencyMs!: number;

  @Column({ type: 'timestamptz', precision: 3, name: 'created_at' })
  createdAt!: Date;
}

/** Proof that an erasure happened: who asked, when, how much; no personal data. */
@Entity({ name: 'erasure_receipts' })
export class ErasureReceiptEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'uuid', name: 'requested_by' })
  requestedBy!: string;

  @Column({ type: 'boolean', name: 'self_requested' })
  selfRequested!: boolean;

  @Column({ type: 'integer' })
  contexts!: number;

  @Column({ type: 'integer', name: 'history_entries' })
  historyEntries!: number;

  @Column({ type: 'boolean', name: 'user_deleted' })
  userDeleted!: boolean;

  @Column({ type: 'timestamptz', precision: 3, name: 'created_at' })
  createdAt!: Date;
}
