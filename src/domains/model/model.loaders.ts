import DataLoader from 'dataloader';
import { type Model } from './model.types';
import { toModel, type ModelService } from './model.service';

export interface ModelLoaders {
  readonly modelById: DataLoader<string, Model | null>;
}

/** Per request: every model a page of contexts or history names, in one query. */
export function createModelLoaders(models: ModelService): ModelLoaders {
  return {
    modelById: new DataLoader(async (ids) =>
      (await models.findByIds(ids)).map((m) => (m ? toModel(m) : null)),
    ),
  };
}
