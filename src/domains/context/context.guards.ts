/**
 * "No secrets in contexts": contexts are read by models, logged in traces and shown in
 * GraphQL responses, so a key that looks like it holds a credential is refused (or
 * stripped) before it is stored. Pure functions; the service decides which to apply.
 */

// Matched anywhere in the normalised key: `db_password`, `stripeApiKey`, `AWS-Secret-Key`.
// "secretary" and "passwordless" are flagged too. That false positive is deliberate: better
// to refuse a harmless field than to store a credential.
const SECRET_FRAGMENTS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'apikey',
  'credential',
  'privatekey',
  'accesskey',
  'secretkey',
  'clientsecret',
] as const;

// Only whole keys: as fragments these would flag `author`, `cookieConsent`, `jwtIssuer`…
const SECRET_NAMES: ReadonlySet<string> = new Set([
  'auth',
  'authorization',
  'bearer',
  'cookie',
  'pwd',
  'sessionid',
  'jwt',
]);

// A suffix, not a fragment: `accessToken` is a credential, `maxTokens` and `tokenCount`
// (model settings) are not.
const SECRET_SUFFIX = 'token';

// Deeper values are kept as they are, unexamined, so hostile nesting cannot overflow the
// stack; the context size limit bounds how much such a value can hold.
const MAX_DEPTH = 64;

/**
 * Whether an object key names a credential. The key is compared lowercased with every
 * non-alphanumeric character dropped, so `API-Key`, `api_key` and `apiKey` are one key.
 */
export function isSecretKey(key: string): boolean {
  const normalised = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return (
    SECRET_NAMES.has(normalised) ||
    normalised.endsWith(SECRET_SUFFIX) ||
    SECRET_FRAGMENTS.some((fragment) => normalised.includes(fragment))
  );
}

/**
 * Paths of every secret-named key in `value`, in document order: `base.key` for object
 * keys, `base[i]` for array items. A secret key's value is not searched further — the
 * whole subtree goes with it.
 */
export function findSecretPaths(value: unknown, basePath: string): string[] {
  const removed: string[] = [];
  walk(value, basePath, 0, removed);
  return removed;
}

/**
 * A deep copy of `value` without the keys {@link findSecretPaths} reports, and those paths.
 * The input is not mutated. Values nested deeper than 64 levels are not examined and are
 * shared with the input rather than copied.
 */
export function stripSecretPaths(
  value: unknown,
  basePath: string,
): { value: unknown; removed: string[] } {
  const removed: string[] = [];
  return { value: walk(value, basePath, 0, removed), removed };
}

/** Size as stored: `JSON.stringify` in UTF-8 bytes (0 for `undefined`, which stores nothing). */
export function serializedSize(value: unknown): number {
  const json: string | undefined = JSON.stringify(value);
  return json === undefined ? 0 : Buffer.byteLength(json, 'utf8');
}

function walk(value: unknown, path: string, depth: number, removed: string[]): unknown {
  if (depth > MAX_DEPTH) {
    return value;
  }
  if (Array.isArray(value)) {
    return value.map((item: unknown, index) => walk(item, `${path}[${index}]`, depth + 1, removed));
  }
  if (!isPlainObject(value)) {
    return value;
  }
  const kept: [string, unknown][] = [];
  for (const [key, child] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`;
    if (isSecretKey(key)) {
      removed.push(childPath);
    } else {
      kept.push([key, walk(child, childPath, depth + 1, removed)]);
    }
  }
  // fromEntries defines own properties, so a JSON `__proto__` key stays data and cannot
  // replace the copy's prototype, as assigning `copy[key] = …` would.
  return Object.fromEntries(kept);
}

// Only what JSON.parse produces is walked; class instances (Date, Buffer) pass through whole.
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
