import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateEncryptionKey } from './field-encryption';

/**
 * Secrets the embedded default generates on first start and keeps in the data directory
 * (mode 0600), so restarts keep tokens valid and encrypted data readable. Production
 * deployments pass their secrets in the environment instead.
 */
export interface LocalSecrets {
  readonly jwtSecret: string;
  readonly postgresPassword: string;
  /** In ENCRYPTION_KEYS form; new keys go first when rotating. */
  readonly encryptionKeys: string;
}

export async function loadOrCreateLocalSecrets(dataDir: string): Promise<LocalSecrets> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'secrets.json');
  const existing: Partial<LocalSecrets> = existsSync(file)
    ? (JSON.parse(await readFile(file, 'utf8')) as Partial<LocalSecrets>)
    : {};
  const secrets: LocalSecrets = {
    jwtSecret: existing.jwtSecret ?? randomBytes(48).toString('base64url'),
    postgresPassword: existing.postgresPassword ?? randomBytes(24).toString('base64url'),
    encryptionKeys: existing.encryptionKeys ?? generateEncryptionKey('local1'),
  };
  if (Object.entries(secrets).some(([k, v]) => existing[k as keyof LocalSecrets] !== v)) {
    await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  }
  return secrets;
}
