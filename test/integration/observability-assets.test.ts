import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * The Grafana dashboard and the Prometheus alerts read only series the server exports, with
 * labels it sets, so a renamed metric breaks this test instead of a panel or a page at 3 am.
 */

const DASHBOARD = path.resolve('ops/grafana/context-server-dashboard.json');
const ALERTS = path.resolve('ops/prometheus/alerts.yaml');

/** Series Prometheus makes itself, and labels it attaches to every scraped sample. */
const PROMETHEUS_SERIES = new Set(['up']);
const TARGET_LABELS = new Set(['job', 'instance']);

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression reads: what is left once strings, label matchers,
 * ranges, grouping clauses, Grafana variables, numbers, keywords and function calls are gone.
 */
function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{\w+\}|\$\w+/g, ' ');
  const names = [...bare.matchAll(/(?<![\w.:$])[a-zA-Z_:][\w:]*(?![\w:])(?!\s*\()/g)].map(
    (m) => m[0],
  );
  return [...new Set(names.filter((n) => !KEYWORDS.has(n)))];
}

/** Each selector `name{a="x", b=~"y"}` in an expression, with the label names it matches on. */
function selectorsIn(expr: string): { metric: string; labels: string[] }[] {
  return [...expr.matchAll(/([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)].map((m) => ({
    metric: m[1]!,
    labels: [...m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  }));
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr?: string; refId: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const allPanels = (panels: Panel[]): Panel[] =>
  panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

describe('observability assets', () => {
  let t: TestApp;
  let dashboard: {
    schemaVersion: number;
    uid: string;
    title: string;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown }[] };
  };
  let rules: Rule[];
  let groups: { name: string; rules: Rule[] }[];
  /** Family name → type, from the `# TYPE` lines of a scrape. */
  const families = new Map<string, string>();
  /** Every series name a scrape can carry: histograms add _bucket, _sum and _count. */
  const exported = new Set<string>();

  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8'));
    ({ groups } = parseYaml(await readFile(ALERTS, 'utf8')) as { groups: typeof groups });
    rules = groups.flatMap((g) => g.rules);

    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    const res = await fetch(`${new URL(t.app.url).origin}/metrics`);
    for (const [, name, type] of (await res.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      families.set(name!, type!);
      exported.add(name!);
      const parts =
        type === 'histogram'
          ? ['_bucket', '_sum', '_count']
          : type === 'summary'
            ? ['_sum', '_count']
            : [];
      for (const suffix of parts) {
        exported.add(`${name}${suffix}`);
      }
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  const panelExprs = () =>
    allPanels(dashboard.panels).flatMap((p) =>
      (p.targets ?? []).map((target) => ({
        where: `panel "${p.title}" ${target.refId}`,
        expr: target.expr ?? '',
      })),
    );
  const ruleExprs = () => rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }));
  /** `label_values(metric{…}, label)` in the dashboard's variables. */
  const variableMetrics = () =>
    dashboard.templating.list.flatMap((v) => {
      const query =
        typeof v.query === 'string' ? v.query : ((v.query as { query?: string })?.query ?? '');
      const m = /label_values\(\s*([a-zA-Z_:][\w:]*)/.exec(query);
      return m ? [{ where: `variable $${v.name}`, metric: m[1]! }] : [];
    });

  /** The label names a family is defined with (prom-client keeps them on the metric). */
  const labelNamesOf = (family: string): string[] => {
    const metric = t.app.metrics.registry.getSingleMetric(family) as unknown as
      { labelNames?: string[] } | undefined;
    return metric?.labelNames ?? [];
  };
  const familyOf = (series: string) =>
    families.has(series) ? series : series.replace(/_(bucket|sum|count)$/, '');

  it('finds metric names in PromQL, leaving functions, labels, variables and numbers out', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (le, model) (rate(inference_duration_seconds_bucket{job=~"$job", outcome!="cached"}[$__rate_interval]))) > 1e3',
      ),
    ).toEqual(['inference_duration_seconds_bucket']);
    expect(
      metricNamesIn(
        '(sum(rate(a_total{code="x"}[5m])) or vector(0)) / on (job) group_left (instance) b_total unless up == 0',
      ),
    ).toEqual(['a_total', 'b_total', 'up']);
    expect(selectorsIn('rate(x_total{job="a", route=~"/g|o", code!="1"}[5m])')).toEqual([
      { metric: 'x_total', labels: ['job', 'route', 'code'] },
    ]);
  });

  describe('the dashboard', () => {
    it('is a Grafana dashboard on a Prometheus data source chosen by variable', () => {
      expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
      expect(dashboard.uid).toBeTruthy();
      const source = dashboard.templating.list.find((v) => v.type === 'datasource');
      expect(source).toMatchObject({ name: 'datasource', query: 'prometheus' });
      for (const panel of allPanels(dashboard.panels).filter((p) => p.type !== 'row')) {
        expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
        for (const target of panel.targets ?? []) {
          expect(target.datasource?.uid, panel.title).toBe('${datasource}');
        }
      }
    });

    it('gives every panel a unique id, a place on the 24-column grid and a query', () => {
      const panels = allPanels(dashboard.panels);
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      for (const panel of panels) {
        expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
        if (panel.type !== 'row') {
          expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
          for (const target of panel.targets!) {
            expect(target.expr?.trim(), panel.title).toBeTruthy();
          }
        }
      }
    });

    it('has the panels an operator looks for', () => {
      const titles = allPanels(dashboard.panels).map((p) => p.title.toLowerCase());
      for (const wanted of [
        'http request rate',
        'http p95 latency',
        'http 5xx error rate',
        'graphql operation rate by operation',
        'graphql p95 latency by operation',
        'graphql error rate by operation',
        'errors by code',
        'inference latency p50 / p95',
        'batch size',
        'queue depth',
        'cache hit rate',
        'websocket connections and subscriptions',
        'db pool',
        'db queries per graphql request',
        'sweeper deletions',
        'cpu',
        'memory',
        'event-loop lag',
      ]) {
        expect(
          titles.some((title) => title.includes(wanted)),
          wanted,
        ).toBe(true);
      }
    });
  });

  describe('the alerts', () => {
    it('is one Prometheus rule group of alerts, each with for, a severity, a summary and a description', () => {
      expect(groups.map((g) => g.name)).toEqual(['context-server']);
      expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
      for (const rule of rules) {
        expect(rule.alert, JSON.stringify(rule)).toMatch(/^[A-Z][A-Za-z]+$/);
        expect(rule.expr?.trim(), rule.alert).toBeTruthy();
        expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
        expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
        expect(rule.annotations?.summary?.trim(), rule.alert).toBeTruthy();
        expect(rule.annotations?.description?.trim(), rule.alert).toBeTruthy();
      }
    });

    it('covers replicas down, server errors, outages, inference latency and queues, the DB pool and event-loop lag', () => {
      const read = (name: string) => rules.filter((r) => metricNamesIn(r.expr).includes(name));
      expect(read('up').some((r) => /\bup\{[^}]*\}\s*==\s*0/.test(r.expr))).toBe(true);
      expect(rules.some((r) => /route="\/ready"/.test(r.expr))).toBe(true);
      expect(rules.some((r) => /status_code=~"5\.\."/.test(r.expr))).toBe(true);
      expect(rules.some((r) => /code="INTERNAL_SERVER_ERROR"/.test(r.expr))).toBe(true);
      expect(rules.some((r) => /code="SERVICE_UNAVAILABLE"/.test(r.expr))).toBe(true);
      expect(read('inference_duration_seconds_bucket')).toHaveLength(1);
      expect(read('inference_queue_depth')).toHaveLength(1);
      expect(read('db_pool_connections').some((r) => /state="waiting"/.test(r.expr))).toBe(true);
      expect(read('nodejs_eventloop_lag_p99_seconds')).toHaveLength(1);
    });
  });

  describe('against the running server', () => {
    it("reads only series the server exports (and Prometheus's own up)", () => {
      const used = [...panelExprs(), ...ruleExprs()].flatMap(({ where, expr }) =>
        metricNamesIn(expr).map((metric) => ({ where, metric })),
      );
      expect(used.length).toBeGreaterThan(40);
      const unknown = [...used, ...variableMetrics()].filter(
        ({ metric }) => !exported.has(metric) && !PROMETHEUS_SERIES.has(metric),
      );
      expect(unknown).toEqual([]);
    });

    it('reads every family the server defines itself', () => {
      const used = new Set(
        [...panelExprs(), ...ruleExprs()].flatMap(({ expr }) => metricNamesIn(expr).map(familyOf)),
      );
      const own = Object.values(t.app.metrics)
        .filter((m): m is { name: string } => typeof (m as { name?: unknown })?.name === 'string')
        .map((m) => m.name);
      expect(own.length).toBeGreaterThan(15);
      expect(own.filter((name) => !used.has(name))).toEqual([]);
    });

    it('matches only on labels the server sets, or Prometheus adds', () => {
      const wrong = [...panelExprs(), ...ruleExprs()].flatMap(({ where, expr }) =>
        selectorsIn(expr).flatMap(({ metric, labels }) => {
          const family = familyOf(metric);
          const allowed = new Set([
            ...TARGET_LABELS,
            ...labelNamesOf(family),
            ...(families.get(family) === 'histogram' && metric.endsWith('_bucket') ? ['le'] : []),
          ]);
          return labels.filter((l) => !allowed.has(l)).map((label) => ({ where, metric, label }));
        }),
      );
      expect(wrong).toEqual([]);
    });
  });
});
