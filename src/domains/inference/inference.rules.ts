import { allow } from 'graphql-shield';
import { isAuthenticated } from '../../graphql/rules';

export const inferenceRules = {
  Mutation: { infer: isAuthenticated },
  InferenceResult: allow,
};
