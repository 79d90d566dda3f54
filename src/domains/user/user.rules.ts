import { allow } from 'graphql-shield';
import { isAdmin, isAuthenticated } from '../../graphql/rules';
import { isSelfOrAdmin } from '../context/context.rules';

/**
 * Who may call what in the user domain. Every path to a User object is guarded where it
 * starts (me, user, users, login's payload), so the type's own scalar fields are open.
 */
export const userRules = {
  Query: { me: allow, user: isAuthenticated, users: isAdmin },
  Mutation: { login: allow, createUser: isAdmin, setUserDisabled: isAdmin, setUserRole: isAdmin },
  User: { '*': allow, contexts: isSelfOrAdmin },
  AuthPayload: allow,
  UserConnection: allow,
  UserEdge: allow,
  PageInfo: allow,
};
