import { gzipSync } from 'node:zlib';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { type Request, type Response } from 'express';

/**
 * The document GraphiQL opens on: the README's "First steps" walk through it, top to bottom.
 * Each operation is named so GraphiQL's run button offers them one by one.
 */
export const EXAMPLE_DOCUMENT = `# Welcome to the context server.
#
# 1. Run "Login" with the admin password that the
#    server printed at its first start (or your
#    ADMIN_PASSWORD). Copy the token from the result.
# 2. Open "Headers" below and paste:
#    { "Authorization": "Bearer <token>" }
# 3. Run "Me", then "Users" (admins only).
# 4. Run "Models", copy the id of moby-char-trigram into
#    "CreateContext" and "Infer", run CreateContext, and
#    paste the context id into the operations below it.

mutation Login {
  login(username: "admin", password: "<the printed password>") {
    token
    expiresAt
    user { id username role }
  }
}

query Me {
  me { id username role createdAt }
}

query Users {
  users(first: 10) {
    totalCount
    edges { cursor node { id username role disabled } }
    pageInfo { hasNextPage endCursor }
  }
}

query Models {
  models { id name version task }
}

mutation CreateContext {
  createContext(input: {
    model: { modelId: "<a model id>" }
    user: { preferences: { creativity: "high", verbosity: "concise", formality: "formal" } }
    environment: { deploymentEnvironment: DEVELOPMENT, serverLoad: 0.9 }
    data: { source: "crm", qualityMetrics: { noiseLevel: 0.2 } }
  }) {
    id version expiresAt
    user { preferences }
    environment { serverLoad }
  }
}

mutation PatchContext {
  # Only the sections given change; expectedVersion guards
  # against overwriting someone else's change (CONFLICT).
  updateContext(
    id: "<the context id>"
    patch: { environment: { serverLoad: 0.2 } }
    expectedVersion: 1
  ) { id version environment { serverLoad } user { preferences } }
}

query MyContexts {
  contexts(first: 10) {
    totalCount
    edges { node { id version updatedAt model { model { name } } } }
  }
}

mutation Infer {
  # The context adapts the parameters (see parameters in
  # the result) and the turn lands in its history.
  infer(
    modelId: "<a model id>"
    contextId: "<the context id>"
    input: { prompt: "Call me Ishmael." }
    parameters: { seed: 42 }
  ) {
    output parameters batchSize cached executionProvider
    historyEntry { sequence }
  }
}

query History {
  context(id: "<the context id>") {
    history(last: 5) {
      totalCount
      edges { node { sequence input output parameters } }
    }
  }
}

subscription WatchContext {
  contextUpdated(contextId: "<the context id>") { id version }
}

mutation CreateUser {
  createUser(input: { username: "ada", password: "correct horse battery", role: USER }) {
    id username role
  }
}
`;

let page: { html: string; gzip: Buffer } | undefined;

function renderPage() {
  // The page inlines every asset (no CDN), ~9 MB before compression: build it once, lazily.
  if (!page) {
    const html = renderGraphiQL({
      endpoint: '/graphql',
      subscriptionsProtocol: 'WS',
      title: 'Context server',
      defaultQuery: EXAMPLE_DOCUMENT,
      shouldPersistHeaders: true,
    });
    page = { html, gzip: gzipSync(html, { level: 9 }) };
  }
  return page;
}

/** A browser asking for /graphql without a query gets GraphiQL; API clients never do. */
export function wantsGraphiQL(req: Request): boolean {
  return (
    req.method === 'GET' &&
    req.query.query === undefined &&
    (req.headers.accept ?? '').includes('text/html')
  );
}

export function serveGraphiQL(req: Request, res: Response): void {
  const { html, gzip } = renderPage();
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Vary', 'Accept-Encoding, Accept');
  if ((req.headers['accept-encoding'] ?? '').includes('gzip')) {
    res.setHeader('Content-Encoding', 'gzip');
    res.end(gzip);
  } else {
    res.end(html);
  }
}
