import { type MigrationInterface, type QueryRunner } from 'typeorm';

export class CreateUsers1764000000000 implements MigrationInterface {
  name = 'CreateUsers1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE users (
        id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
        username      text        NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
        email         text,
        full_name     text,
        password_hash text        NOT NULL,
        role          text        NOT NULL DEFAULT 'USER'
                                  CHECK (role IN ('USER', 'MODEL_DEVELOPER', 'ADMIN')),
        disabled      boolean     NOT NULL DEFAULT false,
        created_at    timestamptz(3) NOT NULL DEFAULT now(),
        updated_at    timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username))`);
    // Keyset pagination of `users` orders by (created_at, id); millisecond precision makes
    // the timestamps round-trip exactly through JavaScript Dates and cursors.
    await q.query(`CREATE INDEX users_created_at_id_idx ON users (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE users`);
  }
}
