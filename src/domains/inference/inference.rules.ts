import { isAuthenticated } from '../../graphql/rules';

export const inferenceRules = {
  Mutation: { infer: isAuthenticated },
};
