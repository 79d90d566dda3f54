import { type DataSource } from 'typeorm';
import { queryRows } from '../db/sql';
import { type FieldEncryption } from './field-encryption';

/** Every encrypted column, with how its ciphertexts are bound to their row. */
export const ENCRYPTED_COLUMNS = [
  { table: 'contexts', column: 'user_data' },
  { table: 'contexts', column: 'custom_attributes' },
  { table: 'history_entries', column: 'input' },
  { table: 'history_entries', column: 'output' },
] as const;

export interface RotationProgress {
  readonly table: string;
  readonly column: string;
  readonly rewritten: number;
}

/**
 * Re-encrypts every ciphertext that is not under the current key, in batches. Each batch
 * is one short transaction that locks its rows with SKIP LOCKED, so it runs beside live
 * servers (whose other keys still decrypt meanwhile) and can be stopped and started again:
 * rows already on the current key are never selected twice.
 */
export async function rotateKeys(
  dataSource: DataSource,
  encryption: FieldEncryption,
  options: { batchSize: number; onProgress?: (p: RotationProgress) => void },
): Promise<number> {
  let total = 0;
  const current = encryption.currentKeyId;
  for (const { table, column } of ENCRYPTED_COLUMNS) {
    let rewritten = 0;
    for (;;) {
      const done = await dataSource.transaction(async (em) => {
        // The key id is stored in the blob: byte 1 is its length, the id follows it.
        const rows = await queryRows<{ id: string; value: Buffer }>(
          em,
          `SELECT id, ${column} AS value FROM ${table}
           WHERE convert_from(substring(${column} from 3 for get_byte(${column}, 1)), 'UTF8') <> $1
           LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [current, options.batchSize],
        );
        for (const row of rows) {
          const aad = `${table}.${column}:${row.id}`;
          const plaintext = encryption.decrypt(row.value, aad);
          await queryRows(em, `UPDATE ${table} SET ${column} = $2 WHERE id = $1`, [
            row.id,
            encryption.encrypt(plaintext, aad),
          ]);
        }
        return rows.length;
      });
      rewritten += done;
      total += done;
      options.onProgress?.({ table, column, rewritten });
      if (done < options.batchSize) {
        break;
      }
    }
  }
  return total;
}
