import 'reflect-metadata';
import { loadConfig } from '../src/config/env';
import { openDatabase } from '../src/db/open-database';
import { createLogger } from '../src/ops/logger';
import { FieldEncryption, parseEncryptionKeys } from '../src/security/field-encryption';
import { rotateKeys } from '../src/security/rotate-keys';

/**
 * `npm run rotate-keys`: after putting a new key first in ENCRYPTION_KEYS (and rolling the
 * servers), re-encrypts every stored ciphertext with it. Safe while servers run; stop and
 * rerun at will. Once it reports 0 rows left, the old key can be removed.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const database = await openDatabase(config, logger);
  try {
    const encryption = new FieldEncryption(parseEncryptionKeys(database.secrets.encryptionKeys));
    const total = await rotateKeys(database.dataSource, encryption, {
      batchSize: config.rotateBatchSize,
      onProgress: (p) => logger.info(p, 'rotating'),
    });
    logger.info(
      { rewritten: total, key: encryption.currentKeyId },
      'every ciphertext is under the current key',
    );
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
