import { isAuthenticated } from '../../graphql/rules';

export const historyRules = {
  Subscription: { contextHistory: isAuthenticated },
};
