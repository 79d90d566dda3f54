import { DateTimeResolver, JSONObjectResolver, JSONResolver } from 'graphql-scalars';

/** `DateTime` (ISO-8601, UTC), `JSON` (any value) and `JSONObject` (an object), from graphql-scalars. */
export const DateTimeScalar = DateTimeResolver;
export const JSONScalar = JSONResolver;
export const JSONObjectScalar = JSONObjectResolver;

export type JsonObject = Record<string, unknown>;
