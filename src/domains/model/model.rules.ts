import { isAuthenticated, isModelDeveloper } from '../../graphql/rules';

export const modelRules = {
  Query: { model: isAuthenticated, models: isAuthenticated },
  Mutation: { registerModel: isModelDeveloper, deleteModel: isModelDeveloper },
};
