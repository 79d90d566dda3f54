import { type RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * helmet's headers on every response. The CSP is strict for the API; the self-hosted
 * GraphiQL page inlines its scripts and styles (that is how it works offline), runs Monaco's
 * workers from blob: URLs and opens a WebSocket back to this origin, so its route allows
 * exactly that and nothing from other origins.
 */
export function securityHeaders(): RequestHandler {
  const api = helmet({
    contentSecurityPolicy: {
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    crossOriginEmbedderPolicy: false,
  });
  const graphiql = helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", "'unsafe-inline'", "'unsafe-eval'", 'blob:'],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        fontSrc: ["'self'", 'data:'],
        workerSrc: ["'self'", 'blob:'],
        connectSrc: ["'self'", 'ws:', 'wss:'],
        frameAncestors: ["'none'"],
      },
    },
    crossOriginEmbedderPolicy: false,
  });
  return (req, res, next) => {
    const browserPage =
      req.method === 'GET' &&
      req.path === '/graphql' &&
      (req.headers.accept ?? '').includes('text/html');
    (browserPage ? graphiql : api)(req, res, next);
  };
}
