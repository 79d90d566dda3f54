import DataLoader from 'dataloader';
import { type User } from './user.entity';
import { type UserService } from './user.service';

export interface UserLoaders {
  readonly userById: DataLoader<string, User | null>;
}

/** Per request: every user lookup of one tick, from the replica's row cache or one query. */
export function createUserLoaders(users: UserService): UserLoaders {
  return {
    userById: new DataLoader((ids) => users.getByIds(ids)),
  };
}
