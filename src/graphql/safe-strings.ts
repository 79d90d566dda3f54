import { type ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, Kind, visit, type DocumentNode } from 'graphql';
import { ErrorCode } from './errors';

/**
 * Strings PostgreSQL cannot store (NUL) and that are not valid Unicode (unpaired
 * surrogates). Refused up front as BAD_USER_INPUT instead of failing deep in SQL.
 */
// Matching NUL is the point here.
// eslint-disable-next-line no-control-regex
const UNSAFE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The path of the first unsafe string in a JSON value (keys included), if any. */
export function findUnsafeString(value: unknown, path: string): string | undefined {
  const trail = unsafeTrail(value, 0);
  return trail && [path, ...trail.reverse()].join('.');
}

/**
 * The keys leading to the first unsafe string, innermost first; [] when `value` is one.
 * Numbers, booleans and nulls are skipped without building anything, so a tensor of a
 * million numbers costs one pass.
 */
function unsafeTrail(value: unknown, depth: number): string[] | undefined {
  if (typeof value === 'string') {
    return UNSAFE.test(value) ? [] : undefined;
  }
  if (depth > 64 || typeof value !== 'object' || value === null) {
    return undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const child: unknown = value[i];
      if (typeof child === 'string' || (typeof child === 'object' && child !== null)) {
        const trail = unsafeTrail(child, depth + 1);
        if (trail) {
          trail.push(String(i));
          return trail;
        }
      }
    }
    return undefined;
  }
  for (const key in value) {
    if (UNSAFE.test(key)) {
      return [key.replace(UNSAFE, '?')];
    }
    const child = (value as Record<string, unknown>)[key];
    if (typeof child === 'string' || (typeof child === 'object' && child !== null)) {
      const trail = unsafeTrail(child, depth + 1);
      if (trail) {
        trail.push(key);
        return trail;
      }
    }
  }
  return undefined;
}

/** Parsed documents are cached by the servers, so each is visited once. */
const literalVerdicts = new WeakMap<DocumentNode, boolean>();

export function hasUnsafeLiteral(document: DocumentNode): boolean {
  let unsafe = literalVerdicts.get(document);
  if (unsafe === undefined) {
    unsafe = false;
    visit(document, {
      [Kind.STRING](node) {
        unsafe ||= UNSAFE.test(node.value);
      },
    });
    literalVerdicts.set(document, unsafe);
  }
  return unsafe;
}

export function unsafeStringError(where: string): GraphQLError {
  return new GraphQLError(`${where} contains a NUL character or invalid Unicode`, {
    extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
  });
}

/** Checks variables and string literals of every operation before it runs. */
export function safeStringsPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          const path = findUnsafeString(request.variables ?? {}, 'variables');
          if (path) {
            throw unsafeStringError(path);
          }
          if (hasUnsafeLiteral(document)) {
            throw unsafeStringError('A string in the operation');
          }
        },
      };
    },
  };
}
