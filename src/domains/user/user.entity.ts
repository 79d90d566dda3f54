import { Field, ID, ObjectType } from 'type-graphql';
import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import { Role } from './role';

/** A person who logs in. The password hash is never selected unless asked for by name. */
@ObjectType('User')
@Entity({ name: 'users' })
export class User {
  @Field(() => ID)
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => String, { description: 'Unique, compared case-insensitively.' })
  @Column({ type: 'text' })
  username!: string;

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', nullable: true })
  email!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', name: 'full_name', nullable: true })
  fullName!: string | null;

  @Column({ type: 'text', name: 'password_hash', select: false })
  passwordHash!: string;

  @Field(() => Role)
  @Column({ type: 'text' })
  role!: Role;

  @Field(() => Boolean, {
    description: 'A disabled user cannot log in and their tokens stop working.',
  })
  @Column({ type: 'boolean', default: false })
  disabled!: boolean;

  @Field(() => Date)
  @CreateDateColumn({ type: 'timestamptz', precision: 3, name: 'created_at' })
  createdAt!: Date;

  @UpdateDateColumn({ type: 'timestamptz', precision: 3, name: 'updated_at' })
  updatedAt!: Date;
}
