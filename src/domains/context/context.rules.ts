import { allow, rule } from 'graphql-shield';
import { type RequestContext } from '../../graphql/context';
import { forbidden, unauthenticated } from '../../graphql/errors';
import { isAdmin, isAuthenticated } from '../../graphql/rules';
import { Role } from '../user/role';

/**
 * Operations need a signed-in user; ownership of each context is checked by the context
 * service on every path (query, mutation, subscription). Objects below a guarded root are
 * open field by field.
 */
export const contextRules = {
  Query: { context: isAuthenticated, contexts: isAuthenticated, erasureReceipts: isAdmin },
  Mutation: {
    createContext: isAuthenticated,
    updateContext: isAuthenticated,
    updateContexts: isAuthenticated,
    deleteContext: isAuthenticated,
    deleteUserData: isAuthenticated,
  },
  Subscription: { contextUpdated: isAuthenticated },
  Context: allow,
  ContextConnection: allow,
  ContextEdge: allow,
  UserContext: allow,
  EnvironmentContext: allow,
  ModelContext: allow,
  DataContext: allow,
  DeletionReport: allow,
  ErasureReceipt: allow,
  ErasureReceiptConnection: allow,
  ErasureReceiptEdge: allow,
};

/** `user { contexts }` of another user: only for that user and admins. */
export const isSelfOrAdmin = rule({ cache: 'strict' })((
  parent: { id: string },
  _args,
  ctx: RequestContext,
) => {
  if (!ctx.user) {
    return unauthenticated(ctx.authError ?? 'Authentication required');
  }
  return (
    ctx.user.role === Role.ADMIN || ctx.user.id === parent.id || forbidden('Not your contexts')
  );
});
