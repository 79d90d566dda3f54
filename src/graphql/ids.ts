import { badInput } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Ids are UUIDs; anything else is refused before it reaches SQL. */
export function parseId(value: string, argument = 'id'): string {
  if (!isUuid(value)) {
    throw badInput(`${argument} is not a valid id`, { argument });
  }
  return value.toLowerCase();
}
