import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import { type ModelEntity } from '../domains/model/model.entity';
import { ModelKind, ModelTask } from '../domains/model/model.types';
import { type RequestContext } from '../graphql/context';
import { AppError, ErrorCode, badInput, unauthenticated } from '../graphql/errors';
import { logUnexpectedError } from '../graphql/mask-error';
import { TO_OIP_DATATYPE } from '../inference/tensors';
import { type TensorType } from '../inference/types';

/**
 * The Open Inference Protocol v2 REST API over this server's own models, so that KServe
 * and Triton clients (and other replicas registering this one as a REMOTE model) can call
 * them: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 *
 * Health and server metadata are open, like `/health`; every model route needs the same
 * bearer token as GraphQL, and inference runs through the same service, so contexts' owner
 * checks, rate limits, caching and history apply unchanged.
 */
export interface OipDeps {
  createContext(input: { authorization: unknown; requestId?: string }): Promise<RequestContext>;
  readiness(): Promise<{ ready: boolean }>;
}

const SERVER_NAME = 'context-server';
const MAX_BODY = '8mb';
const PLATFORM = 'onnxruntime_onnx';
const OIP_BYTES = 'BYTES';
/** Text models answer with their output as one JSON string. */
const OUTPUT_JSON = 'output_json';
/** Longest request id echoed back; longer ones are refused rather than truncated. */
const MAX_ID_CHARS = 256;

/** The input a text model reads, by task; generation also takes `text`, as `infer` does. */
const TEXT_INPUTS: Readonly<Record<string, readonly string[]>> = {
  [ModelTask.TEXT_CLASSIFICATION]: ['text'],
  [ModelTask.TEXT_GENERATION]: ['prompt', 'text'],
};

const STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  BAD_USER_INPUT: 400,
  QUERY_TOO_COMPLEX: 400,
  CONFLICT: 409,
  CONTEXT_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  MODEL_UNAVAILABLE: 503,
  SERVICE_UNAVAILABLE: 503,
  NOT_IMPLEMENTED: 501,
  INFERENCE_FAILED: 500,
};

/** The package's version, found once by walking up from this file (src/ or dist/src/). */
const serverVersion = (() => {
  let dir = __dirname;
  for (let depth = 0; depth < 5; depth++) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === SERVER_NAME && typeof pkg.version === 'string') {
          return pkg.version;
        }
      } catch {
        // an unreadable package.json further down is not ours; keep walking
      }
    }
    dir = path.dirname(dir);
  }
  return '0.0.0';
})();

function oipDatatype(type: string): string {
  if (type === 'string') {
    return OIP_BYTES;
  }
  return TO_OIP_DATATYPE[type as TensorType] ?? type.toUpperCase();
}

interface OipTensorSpec {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
}

/** What clients send and receive: text models show a BYTES face, not their token ids. */
function faceOf(model: ModelEntity): { inputs: OipTensorSpec[]; outputs: OipTensorSpec[] } {
  if (model.task === ModelTask.TENSOR) {
    const spec = (s: { name: string; type: string; dims: number[] }) => ({
      name: s.name,
      datatype: oipDatatype(s.type),
      shape: [...s.dims],
    });
    return { inputs: model.inputs.map(spec), outputs: model.outputs.map(spec) };
  }
  return {
    inputs: [{ name: TEXT_INPUTS[model.task]![0]!, datatype: OIP_BYTES, shape: [-1] }],
    outputs: [{ name: OUTPUT_JSON, datatype: OIP_BYTES, shape: [-1] }],
  };
}

interface OipInput {
  readonly name: string;
  readonly shape: unknown;
  readonly datatype: unknown;
  readonly data: unknown;
}

interface InferBody {
  readonly id: string | undefined;
  readonly parameters: Record<string, unknown>;
  readonly inputs: OipInput[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parseInferBody(body: unknown): InferBody {
  if (!isRecord(body)) {
    throw badInput('The request body must be a JSON object: { id?, parameters?, inputs: [...] }');
  }
  const { id, parameters, inputs } = body;
  if (id !== undefined && (typeof id !== 'string' || id.length > MAX_ID_CHARS)) {
    throw badInput(`id must be a string of at most ${MAX_ID_CHARS} characters`);
  }
  if (parameters !== undefined && !isRecord(parameters)) {
    throw badInput('parameters must be an object');
  }
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw badInput('inputs must be a non-empty array of { name, shape, datatype, data }');
  }
  const names = new Set<string>();
  const parsed = inputs.map((input: unknown, i) => {
    if (!isRecord(input) || typeof input.name !== 'string' || input.name === '') {
      throw badInput(`inputs[${i}] must be an object with a name`);
    }
    if (names.has(input.name)) {
      throw badInput(`inputs[${i}]: the input ${input.name} is given twice`);
    }
    names.add(input.name);
    if (!Array.isArray(input.data)) {
      throw badInput(`inputs[${i}].data must be an array`);
    }
    return { name: input.name, shape: input.shape, datatype: input.datatype, data: input.data };
  });
  return { id, parameters: parameters ?? {}, inputs: parsed };
}

/** The `input` argument of `infer` for this model's task. */
function inferInput(model: ModelEntity, inputs: readonly OipInput[]): unknown {
  if (model.task === ModelTask.TENSOR) {
    return Object.fromEntries(
      inputs.map((i) => [i.name, { shape: i.shape, datatype: i.datatype, data: i.data }]),
    );
  }
  const accepted = TEXT_INPUTS[model.task]!;
  const input =
    inputs.find((i) => accepted.includes(i.name)) ?? (inputs.length === 1 ? inputs[0] : undefined);
  const text = input && (input.data as unknown[]).flat(Infinity)[0];
  if (typeof text !== 'string') {
    throw badInput(
      `The model reads one BYTES input named ${accepted.join(' or ')} holding a string`,
    );
  }
  return text;
}

function outputsOf(model: ModelEntity, output: unknown) {
  if (model.task !== ModelTask.TENSOR) {
    return [{ name: OUTPUT_JSON, shape: [1], datatype: OIP_BYTES, data: [JSON.stringify(output)] }];
  }
  return Object.entries(
    output as Record<string, { shape: number[]; datatype: string; data: unknown[] }>,
  ).map(([name, t]) => ({ name, shape: t.shape, datatype: oipDatatype(t.datatype), data: t.data }));
}

function sendError(req: Request, res: Response, error: unknown): void {
  if (error instanceof AppError) {
    const status = STATUS[error.code] ?? 500;
    if (error.code === ErrorCode.RATE_LIMITED) {
      const retry = error.extensions.retryAfterSeconds;
      if (typeof retry === 'number') {
        res.setHeader('Retry-After', String(retry));
      }
    }
    if (error.code === ErrorCode.UNAUTHENTICATED) {
      res.setHeader('WWW-Authenticate', 'Bearer');
    }
    res.status(status).json({ error: error.message });
    return;
  }
  // Not raised on purpose: logged with an id, never shown (it may hold SQL or a stack).
  const errorId = logUnexpectedError(req.log, error, String(req.id));
  res.status(500).json({ error: 'Internal server error', error_id: errorId });
}

/** Answers `handler`'s errors in OIP form; the body parser's too. */
const route =
  (handler: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  async (req, res) => {
    try {
      await handler(req, res);
    } catch (error) {
      sendError(req, res, error);
    }
  };

const bodyErrors: ErrorRequestHandler = (
  error: { type?: string; status?: number },
  req,
  res,
  next,
) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  if (error.type === 'entity.too.large') {
    res.status(413).json({ error: `Request body exceeds ${MAX_BODY}` });
  } else if (typeof error.status === 'number' && error.status < 500) {
    res.status(error.status).json({ error: 'Malformed request body: expected JSON' });
  } else {
    sendError(req, res, error);
  }
};

/** The routes under `/v2`: mount the router there (`app.use('/v2', router)`). */
export function createOipRouter(deps: OipDeps): Router {
  const router = express.Router();

  const authenticate = async (req: Request): Promise<RequestContext> => {
    const ctx = await deps.createContext({
      authorization: req.headers.authorization,
      requestId: String(req.id),
    });
    if (!ctx.user) {
      throw unauthenticated(ctx.authError ?? 'Authentication required');
    }
    return ctx;
  };

  const findModel = async (ctx: RequestContext, req: Request): Promise<ModelEntity> => {
    const { name, version } = req.params as { name: string; version?: string };
    const model = await ctx.services.models.find({ name, version: version ?? null });
    if (!model) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `Model ${version ? `${name}@${version}` : name} not found`,
      );
    }
    return model;
  };

  router.get('/health/live', (_req, res) => {
    res.json({ live: true });
  });
  router.get(
    '/health/ready',
    route(async (_req, res) => {
      const { ready } = await deps.readiness();
      res.status(ready ? 200 : 503).json({ ready });
    }),
  );
  router.get('/', (_req, res) => {
    res.json({ name: SERVER_NAME, version: serverVersion, extensions: [] });
  });

  const metadata = route(async (req, res) => {
    const ctx = await authenticate(req);
    const model = await findModel(ctx, req);
    const versions = (await ctx.services.models.list())
      .filter((m) => m.name === model.name)
      .map((m) => m.version);
    res.json({
      name: model.name,
      versions,
      platform: model.kind === ModelKind.REMOTE ? 'remote' : PLATFORM,
      ...faceOf(model),
    });
  });
  router.get(['/models/:name', '/models/:name/versions/:version'], metadata);

  const ready = route(async (req, res) => {
    const ctx = await authenticate(req);
    const model = await findModel(ctx, req);
    const loaded = await ctx.services.registry.handleFor(model).then(
      () => true,
      () => false,
    );
    res.status(loaded ? 200 : 503).json({ name: model.name, ready: loaded });
  });
  router.get(['/models/:name/ready', '/models/:name/versions/:version/ready'], ready);

  const infer = route(async (req, res) => {
    const ctx = await authenticate(req);
    const model = await findModel(ctx, req);
    const body = parseInferBody(req.body);
    const { context_id: contextId, ...parameters } = body.parameters;
    if (contextId !== undefined && typeof contextId !== 'string') {
      throw badInput('parameters.context_id must be a string');
    }
    const outcome = await ctx.services.inference.infer(ctx.user!, {
      modelId: model.id,
      input: inferInput(model, body.inputs),
      contextId: contextId ?? null,
      parameters: Object.keys(parameters).length ? parameters : null,
    });
    res.json({
      model_name: outcome.model.name,
      model_version: outcome.model.version,
      id: body.id ?? randomUUID(),
      parameters: {
        cached: outcome.cached,
        batch_size: outcome.batchSize,
        execution_provider: outcome.executionProvider,
        latency_ms: outcome.latencyMs,
      },
      outputs: outputsOf(outcome.model, outcome.output),
    });
  });
  // The larger body limit applies to inference only; GraphQL keeps its own 1 MB.
  router.post(
    ['/models/:name/infer', '/models/:name/versions/:version/infer'],
    express.json({ limit: MAX_BODY }),
    infer,
  );
  // Mounted at /v2, so errors raised before this router keep their own handler.
  router.use(bodyErrors);

  return router;
}
