import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Models (the registry's table), contexts and their history. Sensitive sections are bytea:
 * they hold AES-256-GCM ciphertexts (src/security/field-encryption.ts), never plaintext.
 */
export class CreateModelsContextsHistory1764000100000 implements MigrationInterface {
  name = 'CreateModelsContextsHistory1764000100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE models (
        id                    uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
        name                  text           NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
        version               text           NOT NULL CHECK (length(version) BETWEEN 1 AND 64),
        kind                  text           NOT NULL CHECK (kind IN ('ONNX', 'REMOTE')),
        task                  text           NOT NULL
                                             CHECK (task IN ('TEXT_GENERATION', 'TEXT_CLASSIFICATION', 'TENSOR')),
        description           text,
        path                  text,
        endpoint              text,
        remote_name           text,
        remote_protocol       text           CHECK (remote_protocol IN ('OPEN_INFERENCE_V2', 'TFSERVING_V1')),
        inputs                jsonb          NOT NULL DEFAULT '[]',
        outputs               jsonb          NOT NULL DEFAULT '[]',
        default_parameters    jsonb          NOT NULL DEFAULT '{}',
        max_batch_size        integer        CHECK (max_batch_size > 0),
        max_queue_delay_ms    integer        CHECK (max_queue_delay_ms >= 0),
        cacheable             boolean        NOT NULL DEFAULT false,
        cache_ttl_seconds     integer        CHECK (cache_ttl_seconds > 0),
        rate_limit_per_minute integer        CHECK (rate_limit_per_minute > 0),
        created_at            timestamptz(3) NOT NULL DEFAULT now(),
        deleted_at            timestamptz(3)
      )`);
    // Soft-deleted models keep resolving for old contexts; a name+version may be registered
    // again once the previous one is deleted.
    await q.query(
      `CREATE UNIQUE INDEX models_name_version_key ON models (name, version) WHERE deleted_at IS NULL`,
    );

    await q.query(`
      CREATE TABLE contexts (
        id                uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id           uuid           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        model_id          uuid           NOT NULL REFERENCES models (id),
        schema_version    smallint       NOT NULL DEFAULT 1,
        version           integer        NOT NULL DEFAULT 1,
        last_sequence     integer        NOT NULL DEFAULT 0,
        user_data         bytea          NOT NULL,
        environment       jsonb          NOT NULL,
        model_data        jsonb          NOT NULL,
        data              jsonb          NOT NULL,
        custom_attributes bytea          NOT NULL,
        ttl_seconds       integer        CHECK (ttl_seconds > 0),
        created_at        timestamptz(3) NOT NULL DEFAULT now(),
        updated_at        timestamptz(3) NOT NULL DEFAULT now(),
        expires_at        timestamptz(3) NOT NULL
      )`);
    await q.query(
      `CREATE INDEX contexts_user_updated_idx ON contexts (user_id, updated_at DESC, id DESC)`,
    );
    await q.query(`CREATE INDEX contexts_updated_idx ON contexts (updated_at DESC, id DESC)`);
    await q.query(`CREATE INDEX contexts_expires_idx ON contexts (expires_at)`);
    await q.query(`CREATE INDEX contexts_model_idx ON contexts (model_id)`);
    await q.query(
      `CREATE INDEX contexts_legacy_idx ON contexts (schema_version) WHERE schema_version < 1`,
    );

    await q.query(`
      CREATE TABLE history_entries (
        id          uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
        context_id  uuid             NOT NULL REFERENCES contexts (id) ON DELETE CASCADE,
        sequence    integer          NOT NULL CHECK (sequence > 0),
        model_id    uuid             NOT NULL REFERENCES models (id),
        input       bytea            NOT NULL,
        output      bytea            NOT NULL,
        parameters  jsonb            NOT NULL DEFAULT '{}',
        latency_ms  double precision NOT NULL DEFAULT 0,
        created_at  timestamptz(3)   NOT NULL DEFAULT now(),
        CONSTRAINT history_entries_context_sequence_key UNIQUE (context_id, sequence)
      )`);
    await q.query(`CREATE INDEX history_entries_model_idx ON history_entries (model_id)`);

    // Accountability for right-to-erasure requests: who asked, when, how much; nothing else.
    await q.query(`
      CREATE TABLE erasure_receipts (
        id              uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
        requested_by    uuid           NOT NULL,
        self_requested  boolean        NOT NULL,
        contexts        integer        NOT NULL,
        history_entries integer        NOT NULL,
        user_deleted    boolean        NOT NULL,
        created_at      timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX erasure_receipts_created_idx ON erasure_receipts (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE erasure_receipts`);
    await q.query(`DROP TABLE history_entries`);
    await q.query(`DROP TABLE contexts`);
    await q.query(`DROP TABLE models`);
  }
}
