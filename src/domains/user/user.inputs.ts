import { IsEmail, IsOptional, Length, Matches, MaxLength } from 'class-validator';
import { Field, InputType } from 'type-graphql';
import { Role } from './role';

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;
export const USERNAME_MAX = 64;
export const PASSWORD_MIN = 8;
/** Bounds the cost of hashing an attacker-chosen password. */
export const PASSWORD_MAX = 256;

@InputType('CreateUserInput')
export class CreateUserInput {
  @Field(() => String, { description: `3–${USERNAME_MAX} characters: letters, digits, . _ @ -` })
  @Length(3, USERNAME_MAX)
  @Matches(USERNAME_PATTERN, {
    message:
      'username may contain only letters, digits and . _ @ - and must start with a letter or digit',
  })
  username!: string;

  @Field(() => String, { description: `${PASSWORD_MIN}–${PASSWORD_MAX} characters.` })
  @Length(PASSWORD_MIN, PASSWORD_MAX)
  password!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(254)
  @IsEmail()
  email?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(200)
  fullName?: string | null;

  @Field(() => Role, { nullable: true, defaultValue: Role.USER })
  role?: Role | null;
}
