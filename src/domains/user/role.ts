import { registerEnumType } from 'type-graphql';

export enum Role {
  USER = 'USER',
  MODEL_DEVELOPER = 'MODEL_DEVELOPER',
  ADMIN = 'ADMIN',
}
export const ROLES: readonly Role[] = Object.values(Role);

registerEnumType(Role, {
  name: 'Role',
  description:
    'What a user may do: USER owns contexts; MODEL_DEVELOPER also registers models; ADMIN may do anything.',
});
