import { serverAudits, type AuditResult } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * graphql-http's conformance audits for the GraphQL-over-HTTP spec, run against the real
 * server in-process. MUST audits pass. SHOULD and MAY audits pass too, except the ones below,
 * each with the reason it cannot pass; those are checked to fail still, so the list stays
 * honest and an upgrade that fixes one shows up here.
 */
const KNOWN_EXCEPTIONS: readonly { readonly id: string; readonly reason: string }[] = [
  {
    id: '572B',
    reason:
      'Apollo Server 5 answers a document that does not parse with 400 whatever the Accept ' +
      'header; the spec asks for 200 under the legacy application/json media type. Apollo has ' +
      'no option for it (only a plugin rewriting http.status could).',
  },
  {
    id: 'FDE2',
    reason:
      'Same as 572B: Apollo Server 5 answers a document that fails validation (or, as in this ' +
      'audit, does not even parse) with 400 for application/json too.',
  },
  {
    id: '7B9B',
    reason:
      'Apollo Server 5 answers variable coercion failures with 400 for every media type (v4 ' +
      'had status400ForVariableCoercionErrors; v5 removed the option and always uses 400). The ' +
      "audit's operation also declares an unused variable, a validation error: 400 again.",
  },
];

const exceptionOf = (id: string) => KNOWN_EXCEPTIONS.find((e) => e.id === id);

async function explain(result: AuditResult): Promise<string> {
  if (result.status === 'ok') {
    return 'ok';
  }
  const body = await result.response.text().catch(() => '(body already read)');
  return `${result.status}: ${result.reason}; HTTP ${result.response.status} ${body.slice(0, 300)}`;
}

describe('GraphQL over HTTP conformance (graphql-http audits)', () => {
  let t: TestApp;
  // The URL is read when each audit runs, after beforeAll has started the server.
  const audits = serverAudits({ url: () => t.app.url, fetchFn: fetch });

  beforeAll(async () => {
    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('lists as known exceptions only audits that exist and are not MUST', () => {
    for (const { id, reason } of KNOWN_EXCEPTIONS) {
      const audit = audits.find((a) => a.id === id);
      expect(audit, `audit ${id}`).toBeDefined();
      expect(audit!.name.startsWith('MUST'), `${id} is a MUST`).toBe(false);
      expect(reason.length).toBeGreaterThan(20);
    }
  });

  for (const audit of audits) {
    const exception = exceptionOf(audit.id);
    if (exception) {
      it(`still cannot ${audit.name.replace(/^(SHOULD|MAY) /, '')} (${audit.id}, a known exception)`, async () => {
        const result = await audit.fn();
        expect(result.status, exception.reason).not.toBe('ok');
      });
    } else {
      it(`passes: ${audit.name} (${audit.id})`, async () => {
        const result = await audit.fn();
        expect(result.status, await explain(result)).toBe('ok');
      });
    }
  }
});
