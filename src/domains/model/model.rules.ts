import { allow } from 'graphql-shield';
import { isAuthenticated, isModelDeveloper } from '../../graphql/rules';

export const modelRules = {
  Query: { model: isAuthenticated, models: isAuthenticated },
  Mutation: { registerModel: isModelDeveloper, deleteModel: isModelDeveloper },
  // Where a remote model lives is operational detail: developers and admins only.
  Model: { '*': allow, endpoint: isModelDeveloper },
  TensorSpec: allow,
};
