import { CreateUsers1764000000000 } from './1764000000000-create-users';
import { CreateModelsContextsHistory1764000100000 } from './1764000100000-create-models-contexts-history';
import { AppendHistoryFunction1764000200000 } from './1764000200000-append-history-function';

/** Every migration, oldest first. Listed explicitly so compiled and tsx runs find the same set. */
export const MIGRATIONS = [
  CreateUsers1764000000000,
  CreateModelsContextsHistory1764000100000,
  AppendHistoryFunction1764000200000,
];
