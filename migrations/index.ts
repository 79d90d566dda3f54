import { CreateUsers1764000000000 } from './1764000000000-create-users';

/** Every migration, oldest first. Listed explicitly so compiled and tsx runs find the same set. */
export const MIGRATIONS = [CreateUsers1764000000000];
