import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres';
import { startTestApp } from '../support/test-app';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

/** A minimal OTLP/HTTP receiver: collects the spans the server exports. */
function startReceiver(port: number): Promise<{ server: Server; spans: OtlpSpan[] }> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') {
        body = gunzipSync(body);
      }
      const payload = JSON.parse(body.toString('utf8')) as {
        resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of payload.resourceSpans) {
        for (const ss of rs.scopeSpans) {
          spans.push(...ss.spans);
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => resolve({ server, spans })),
  );
}

describe('tracing', () => {
  let receiver: { server: Server; spans: OtlpSpan[] };
  let port: number;
  beforeAll(async () => {
    port = await findFreePort();
    receiver = await startReceiver(port);
  });
  afterAll(() => {
    receiver.server.close();
  });

  it('exports a trace of an infer call whose children are the context, model and history work', async () => {
    const t = await startTestApp({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
    });
    const models = await t.gql('{ models { id name } }', {}, t.adminToken);
    const modelId = models.data!.models.find(
      (m: { name: string }) => m.name === 'moby-char-trigram',
    ).id;
    const created = await t.gql(
      'mutation($m: ID!) { createContext(input: { model: { modelId: $m } }) { id } }',
      { m: modelId },
      t.adminToken,
    );
    const res = await t.gql(
      'mutation RunInfer($m: ID!, $c: ID) { infer(modelId: $m, input: "the sea", contextId: $c, parameters: { max_tokens: 5 }) { batchSize } }',
      { m: modelId, c: created.data!.createContext.id },
      t.adminToken,
    );
    expect(res.errors).toBeUndefined();
    await t.stop(); // flushes the exporter

    const infer = receiver.spans.find((s) => s.name === 'infer');
    expect(infer, `spans: ${receiver.spans.map((s) => s.name).join(', ')}`).toBeDefined();
    const trace = receiver.spans.filter((s) => s.traceId === infer!.traceId);
    const operation = trace.find((s) => s.spanId === infer!.parentSpanId);
    expect(operation?.name).toBe('graphql mutation RunInfer');
    const children = trace.filter((s) => s.parentSpanId === infer!.spanId).map((s) => s.name);
    expect(children).toEqual(
      expect.arrayContaining(['context.load', 'model.run', 'history.append']),
    );
    const run = trace.find((s) => s.name === 'model.run')!;
    expect(run.attributes?.find((a) => a.key === 'inference.batch_size')).toBeDefined();
  });
});
