import { randomUUID } from 'node:crypto';
import { type Pool } from 'pg';
import { FieldEncryption, parseEncryptionKeys } from '../src/security/field-encryption';

export interface SeededContext {
  readonly id: string;
  readonly lastSequence: number;
}

export interface Seed {
  readonly contexts: SeededContext[];
}

/** Section contents of a realistic, mid-sized context (a few hundred bytes per section). */
export function sections(i: number) {
  return {
    user: {
      preferences: {
        language: 'en',
        formality: i % 2 ? 'casual' : 'formal',
        theme: 'dark',
        notifications: { email: true, push: i % 3 === 0 },
      },
      demographics: { ageBand: '30-39', region: 'EU', occupation: 'engineer' },
    },
    environment: {
      deploymentEnvironment: 'PRODUCTION',
      serverLoad: 0.25,
      availableResources: { cpu: 2, memoryGb: 24, gpu: false },
    },
    model: {
      parameters: { temperature: 0.7, max_tokens: 256 },
      constraints: { maxLatencyMs: 500 },
    },
    data: { source: 'bench', qualityMetrics: { noiseLevel: 0.1, completeness: 0.98 } },
    customAttributes: { tier: 'gold', tags: ['bench', `group-${i % 10}`], index: i },
  };
}

/**
 * Writes `contexts` contexts for `userId`, each with `historyPerContext` entries, straight
 * into the tables the way the server stores them (ciphertext columns encrypted with the
 * server's keys and the same AAD), in one transaction: seeding through the API would take
 * longer than the benchmark. `updated_at` is spaced a second apart so pages are stable.
 */
export async function seedContexts(
  pool: Pool,
  options: {
    encryptionKeys: string;
    userId: string;
    modelId: string;
    contexts: number;
    historyPerContext: number;
  },
): Promise<Seed> {
  const encryption = new FieldEncryption(parseEncryptionKeys(options.encryptionKeys));
  const client = await pool.connect();
  const seeded: SeededContext[] = [];
  try {
    await client.query('BEGIN');
    for (let i = 0; i < options.contexts; i++) {
      const id = randomUUID();
      const s = sections(i);
      await client.query(
        `INSERT INTO contexts (id, user_id, model_id, schema_version, last_sequence, user_data,
           environment, model_data, data, custom_attributes, created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9,
           now() - make_interval(secs => $10), now() - make_interval(secs => $10),
           now() + interval '30 days')`,
        [
          id,
          options.userId,
          options.modelId,
          options.historyPerContext,
          encryption.encryptJson(s.user, `contexts.user_data:${id}`),
          JSON.stringify({ timestamp: new Date().toISOString(), ...s.environment }),
          JSON.stringify(s.model),
          JSON.stringify({ ...s.data, timestamp: null }),
          encryption.encryptJson(s.customAttributes, `contexts.custom_attributes:${id}`),
          i + 1,
        ],
      );
      for (let sequence = 1; sequence <= options.historyPerContext; sequence++) {
        const entryId = randomUUID();
        await client.query(
          `INSERT INTO history_entries (id, context_id, sequence, model_id, input, output,
             parameters, latency_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            entryId,
            id,
            sequence,
            options.modelId,
            encryption.encryptJson(
              { text: `turn ${sequence}: the service was quick and the answer helpful` },
              `history_entries.input:${entryId}`,
            ),
            encryption.encryptJson(
              { label: 'positive', scores: { negative: 0.12, positive: 0.88 } },
              `history_entries.output:${entryId}`,
            ),
            JSON.stringify({}),
            1.5,
          ],
        );
      }
      seeded.push({ id, lastSequence: options.historyPerContext });
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  return { contexts: seeded };
}
