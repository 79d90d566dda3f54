import DataLoader from 'dataloader';
import { type User } from './user.entity';
import { type UserService } from './user.service';

export interface UserLoaders {
  readonly userById: DataLoader<string, User | null>;
}

/** Per request: batches every user lookup of one tick into one query. */
export function createUserLoaders(users: UserService): UserLoaders {
  return {
    userById: new DataLoader(async (ids) => {
      const rows = await users.findByIds(ids);
      const byId = new Map(rows.map((u) => [u.id, u]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
