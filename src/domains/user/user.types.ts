import { Field, ObjectType } from 'type-graphql';
import { connectionTypes } from '../../graphql/pagination';
import { User } from './user.entity';

@ObjectType('AuthPayload')
export class AuthPayload {
  @Field(() => String, {
    description:
      'A signed JWT; send as "Authorization: Bearer <token>" or as connectionParams.authorization on graphql-ws.',
  })
  token!: string;

  @Field(() => Date)
  expiresAt!: Date;

  @Field(() => User)
  user!: User;
}

export const { Edge: UserEdge, Connection: UserConnection } = connectionTypes('User', User);
