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

/** The path of the first unsafe string in a JSON value, if any. */
export function findUnsafeString(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') {
    return UNSAFE.test(value) ? path : undefined;
  }
  if (depth > 64 || typeof value !== 'object' || value === null) {
    return undefined;
  }
  for (const [key, child] of Object.entries(value)) {
    if (UNSAFE.test(key)) {
      return `${path}.${key.replace(UNSAFE, '?')}`;
    }
    if (typeof child !== 'string' && (typeof child !== 'object' || child === null)) {
      continue;
    }
    const found = findUnsafeString(child, `${path}.${key}`, depth + 1);
    if (found) {
      return found;
    }
  }
  return undefined;
}

export function hasUnsafeLiteral(document: DocumentNode): boolean {
  let unsafe = false;
  visit(document, {
    [Kind.STRING](node) {
      unsafe ||= UNSAFE.test(node.value);
    },
  });
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
