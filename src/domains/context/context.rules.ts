import { isAuthenticated } from '../../graphql/rules';

/** Operations are open to signed-in users; ownership is checked by the context service. */
export const contextRules = {
  Query: { context: isAuthenticated, contexts: isAuthenticated },
  Mutation: {
    createContext: isAuthenticated,
    updateContext: isAuthenticated,
    updateContexts: isAuthenticated,
    deleteContext: isAuthenticated,
    deleteUserData: isAuthenticated,
  },
  Subscription: { contextUpdated: isAuthenticated },
};
