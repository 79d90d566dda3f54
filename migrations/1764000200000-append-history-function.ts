import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Appending a history entry in one round trip. The context row's lock (UPDATE … RETURNING)
 * serialises appenders of one context; the function then inserts the entry with that number
 * and deletes the entries beyond the limit. Being VOLATILE, each statement in it reads a fresh
 * snapshot: an appender that waited for the lock sees (and trims) what the appenders before it
 * committed, which one statement with data-modifying CTEs would not (they share the snapshot
 * taken before the wait). No row when the context does not exist or has expired.
 */
export class AppendHistoryFunction1764000200000 implements MigrationInterface {
  name = 'AppendHistoryFunction1764000200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION append_history_entry(
        p_id uuid, p_context_id uuid, p_model_id uuid, p_input bytea, p_output bytea,
        p_parameters jsonb, p_latency_ms double precision, p_limit integer
      ) RETURNS SETOF history_entries
      LANGUAGE plpgsql VOLATILE AS $$
      DECLARE
        next_sequence integer;
        entry history_entries;
      BEGIN
        UPDATE contexts SET last_sequence = last_sequence + 1
          WHERE id = p_context_id AND expires_at > now()
          RETURNING last_sequence INTO next_sequence;
        IF NOT FOUND THEN
          RETURN;
        END IF;
        INSERT INTO history_entries (id, context_id, sequence, model_id, input, output, parameters, latency_ms)
          VALUES (p_id, p_context_id, next_sequence, p_model_id, p_input, p_output, p_parameters, p_latency_ms)
          RETURNING * INTO entry;
        DELETE FROM history_entries
          WHERE context_id = p_context_id AND sequence <= next_sequence - p_limit;
        RETURN NEXT entry;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `DROP FUNCTION append_history_entry(uuid, uuid, uuid, bytea, bytea, jsonb, double precision, integer)`,
    );
  }
}
