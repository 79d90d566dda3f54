import { rule } from 'graphql-shield';
import { Role } from '../domains/user/role';
import { forbidden, unauthenticated } from './errors';
import { type RequestContext } from './context';

/** Building blocks for the per-domain rule maps; permissions.ts merges those maps. */
export const isAuthenticated = rule({ cache: 'contextual' })(
  (_parent, _args, ctx: RequestContext) =>
    ctx.user !== null || unauthenticated(ctx.authError ?? 'Authentication required'),
);

function hasRole(...roles: Role[]) {
  return rule({ cache: 'contextual' })((_parent, _args, ctx: RequestContext) => {
    if (!ctx.user) {
      return unauthenticated(ctx.authError ?? 'Authentication required');
    }
    return roles.includes(ctx.user.role) || forbidden(`Requires role ${roles.join(' or ')}`);
  });
}

export const isAdmin = hasRole(Role.ADMIN);
export const isModelDeveloper = hasRole(Role.MODEL_DEVELOPER, Role.ADMIN);
