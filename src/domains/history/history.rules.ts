import { allow } from 'graphql-shield';
import { isAuthenticated } from '../../graphql/rules';

export const historyRules = {
  Subscription: { contextHistory: isAuthenticated },
  HistoryEntry: allow,
  HistoryConnection: allow,
  HistoryEdge: allow,
};
