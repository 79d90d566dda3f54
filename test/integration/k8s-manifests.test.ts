import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ENV_VARIABLES, loadConfig } from '../../src/config/env';
import { ENCRYPTION_KEYS, JWT_SECRET, startTestApp, type TestApp } from '../support/test-app';

/**
 * The manifests in k8s/, checked offline: each object against the Kubernetes OpenAPI schema
 * that `kubernetes-models` ships (with unknown fields refused, as `kubectl --validate=strict`
 * does), then against each other, the server's configuration schema and its real routes.
 */

const K8S_DIR = path.resolve('k8s');
const SERVER_IMAGE = 'context-server';

type Obj = Record<string, any>;

interface Manifest {
  readonly file: string;
  readonly doc: Obj;
}

/** A model class of kubernetes-models; its `validate` runs the compiled JSON schema on `this`. */
type ModelClass = { prototype: { validate(): void } };

const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

/**
 * Problems of one object: schema violations, and fields the schema does not know. Kubernetes'
 * schemas allow unknown fields, so a misspelt `readinessProbes` would pass them and be dropped
 * by the API server; the object is wrapped in proxies that record which fields the validator
 * reads, and every field it never read is one the schema does not define.
 */
function schemaProblems(doc: Obj): string[] {
  const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!model) {
    return [`no schema for ${doc.apiVersion} ${doc.kind}`];
  }
  const read = new Set<string>();
  const present: string[] = [];
  const track = (value: unknown, at: string): unknown => {
    if (Array.isArray(value)) {
      return value.map((item, i) => track(item, `${at}/${i}`));
    }
    if (value === null || typeof value !== 'object') {
      return value;
    }
    const target: Obj = {};
    for (const [key, child] of Object.entries(value)) {
      present.push(`${at}/${key}`);
      target[key] = track(child, `${at}/${key}`);
    }
    return new Proxy(target, {
      get(object, key, receiver) {
        if (typeof key === 'string' && Object.hasOwn(object, key)) {
          read.add(`${at}/${key}`);
        }
        return Reflect.get(object, key, receiver);
      },
    });
  };
  const problems: string[] = [];
  try {
    model.prototype.validate.call(track(doc, ''));
  } catch (error) {
    problems.push((error as Error).message);
  }
  problems.push(...present.filter((p) => !read.has(p)).map((p) => `unknown field ${p}`));
  return problems;
}

function loadManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f))) {
    if (file === 'kustomization.yaml') {
      continue;
    }
    for (const document of parseAllDocuments(readFileSync(path.join(K8S_DIR, file), 'utf8'))) {
      if (document.errors.length) {
        throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
      }
      const doc = document.toJS() as Obj | null;
      if (doc) {
        manifests.push({ file, doc });
      }
    }
  }
  return manifests;
}

const manifests = loadManifests();
const all = manifests.map((m) => m.doc);
const named = (kind: string, name: string, file?: string): Obj => {
  const found = manifests.find(
    (m) =>
      m.doc.kind === kind &&
      m.doc.metadata?.name === name &&
      (file === undefined || m.file === file),
  );
  if (!found) {
    throw new Error(`no ${kind} ${name}${file ? ` in ${file}` : ''}`);
  }
  return found.doc;
};
const ofKind = (kind: string) => all.filter((d) => d.kind === kind);
const workloads = () => all.filter((d) => ['Deployment', 'StatefulSet', 'Job'].includes(d.kind));
const podSpecOf = (workload: Obj): Obj => workload.spec.template.spec;
const podLabelsOf = (workload: Obj): Record<string, string> =>
  workload.spec.template.metadata?.labels ?? {};
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
const isServerImage = (image: string) => image.split(':')[0] === SERVER_IMAGE;
const containersOf = (workload: Obj): Obj[] => [
  ...(podSpecOf(workload).initContainers ?? []),
  ...podSpecOf(workload).containers,
];
const serverContainers = () =>
  workloads().flatMap((w) =>
    containersOf(w)
      .filter((c) => isServerImage(c.image))
      .map((container) => ({ workload: w, container })),
  );

const deployment = named('Deployment', 'context-server');
const server = podSpecOf(deployment).containers.find((c: Obj) => c.name === 'server') as Obj;
const configMap = named('ConfigMap', 'context-server');
/** secret.example.yaml: the Secrets operators create themselves, with placeholders. */
const exampleSecrets = manifests.filter((m) => m.file === 'secret.example.yaml').map((m) => m.doc);
const exampleSecret = (name: string): Obj | undefined =>
  exampleSecrets.find((s) => s.kind === 'Secret' && s.metadata.name === name);
const secretKeys = (name: string) => Object.keys(exampleSecret(name)?.stringData ?? {});

describe('k8s manifests: schemas', () => {
  it('finds every kind of object the deployment needs', () => {
    expect(new Set(all.map((d) => d.kind))).toEqual(
      new Set([
        'ConfigMap',
        'Secret',
        'Service',
        'Deployment',
        'StatefulSet',
        'Job',
        'HorizontalPodAutoscaler',
        'PodDisruptionBudget',
      ]),
    );
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.doc.kind} ${m.doc.metadata?.name}`, m.doc]))(
    '%s matches its Kubernetes schema with no unknown fields',
    (_name, doc) => {
      expect(schemaProblems(doc)).toEqual([]);
    },
  );

  it('are namespace-free, so one set applies to any namespace', () => {
    expect(all.filter((d) => d.metadata?.namespace !== undefined)).toEqual([]);
  });

  it('refuse a misspelt field and a wrong type (the strict check itself works)', () => {
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].readinessProbes = { httpGet: { path: '/ready' } };
    broken.spec.replicas = 'three';
    const problems = schemaProblems(broken);
    expect(problems).toContain('unknown field /spec/template/spec/containers/0/readinessProbes');
    expect(problems.join()).toMatch(/\/spec\/replicas must be integer/);
  });
});

describe('k8s manifests: references between objects', () => {
  it('give every workload a selector that matches its own pod labels', () => {
    for (const workload of all.filter((d) => ['Deployment', 'StatefulSet'].includes(d.kind))) {
      expect(matches(workload.spec.selector.matchLabels, podLabelsOf(workload))).toBe(true);
    }
  });

  it('route every Service to exactly one workload, on a named port its container declares', () => {
    for (const service of ofKind('Service')) {
      const targets = all
        .filter((d) => ['Deployment', 'StatefulSet'].includes(d.kind))
        .filter((w) => matches(service.spec.selector, podLabelsOf(w)));
      expect(
        targets.map((t) => t.metadata.name),
        service.metadata.name,
      ).toHaveLength(1);
      const ports = containersOf(targets[0]!).flatMap((c) => c.ports ?? []);
      for (const port of service.spec.ports) {
        expect(typeof port.targetPort, `${service.metadata.name} targetPort`).toBe('string');
        expect(ports.map((p: Obj) => p.name)).toContain(port.targetPort);
      }
    }
  });

  it('point the StatefulSet at its headless Service', () => {
    const postgres = named('StatefulSet', 'postgres');
    expect(named('Service', postgres.spec.serviceName).spec.clusterIP).toBe('None');
  });

  it('scale and protect the server Deployment with the HPA and the PDB', () => {
    const hpa = named('HorizontalPodAutoscaler', 'context-server');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(deployment.spec.replicas);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics.map((m: Obj) => m.resource.name).sort()).toEqual(['cpu', 'memory']);
    // Utilisation targets are relative to the requests.
    expect(server.resources.requests).toMatchObject({
      cpu: expect.any(String),
      memory: expect.any(String),
    });

    const pdb = named('PodDisruptionBudget', 'context-server');
    expect(matches(pdb.spec.selector.matchLabels, podLabelsOf(deployment))).toBe(true);
    const allowedDown = pdb.spec.maxUnavailable ?? deployment.spec.replicas - pdb.spec.minAvailable;
    expect(allowedDown).toBeGreaterThanOrEqual(1); // a node drain can make progress
    expect(allowedDown).toBeLessThan(hpa.spec.minReplicas); // and never takes them all
  });

  it('take every secret and config reference from objects that define it', () => {
    for (const workload of workloads()) {
      for (const container of containersOf(workload)) {
        const where = `${workload.metadata.name}/${container.name}`;
        for (const source of container.envFrom ?? []) {
          if (source.secretRef) {
            expect(exampleSecret(source.secretRef.name), where).toBeDefined();
          }
          if (source.configMapRef) {
            expect(named('ConfigMap', source.configMapRef.name), where).toBeDefined();
          }
        }
        for (const variable of container.env ?? []) {
          const ref = variable.valueFrom?.secretKeyRef;
          if (ref) {
            expect(secretKeys(ref.name), `${where} ${variable.name}`).toContain(ref.key);
          }
          const configRef = variable.valueFrom?.configMapKeyRef;
          if (configRef) {
            expect(Object.keys(named('ConfigMap', configRef.name).data)).toContain(configRef.key);
          }
        }
      }
    }
  });

  it('mount every volume a container names, and name no volume twice', () => {
    for (const workload of workloads()) {
      const volumes = [
        ...(podSpecOf(workload).volumes ?? []),
        ...(workload.spec.volumeClaimTemplates ?? []).map((t: Obj) => t.metadata),
      ].map((v: Obj) => v.name);
      expect(new Set(volumes).size).toBe(volumes.length);
      for (const container of containersOf(workload)) {
        for (const mount of container.volumeMounts ?? []) {
          expect(volumes, `${workload.metadata.name}/${container.name}`).toContain(mount.name);
        }
      }
    }
  });

  it('connect the server to the postgres and redis Services with their own credentials', () => {
    const database = new URL(exampleSecret('context-server')!.stringData.DATABASE_URL);
    const postgresService = named('Service', database.hostname);
    expect(postgresService.spec.ports.map((p: Obj) => p.port)).toContain(Number(database.port));
    const postgres = podSpecOf(named('StatefulSet', 'postgres')).containers[0] as Obj;
    const env = Object.fromEntries(postgres.env.map((e: Obj) => [e.name, e]));
    expect(env.POSTGRES_USER.value).toBe(database.username);
    expect(env.POSTGRES_DB.value).toBe(database.pathname.slice(1));
    expect(env.POSTGRES_PASSWORD.valueFrom.secretKeyRef.name).toBe('postgres');

    const redisUrl = new URL(exampleSecret('context-server')!.stringData.REDIS_URL);
    const redisService = named('Service', redisUrl.hostname);
    expect(redisService.spec.ports.map((p: Obj) => p.port)).toContain(Number(redisUrl.port));
    const redis = podSpecOf(named('Deployment', 'redis')).containers[0] as Obj;
    expect(redis.args).toContain('--requirepass');
    expect(redis.env.map((e: Obj) => e.valueFrom?.secretKeyRef?.name)).toContain('redis');
  });
});

describe('k8s manifests: the server configuration', () => {
  it('set only variables the server reads (src/config/env.ts), from the ConfigMap and Secret', () => {
    const known = new Set<string>(ENV_VARIABLES);
    expect(Object.keys(configMap.data).filter((k) => !known.has(k))).toEqual([]);
    expect(secretKeys('context-server').filter((k) => !known.has(k))).toEqual([]);
    for (const { workload, container } of serverContainers()) {
      const where = `${workload.metadata.name}/${container.name}`;
      const names = (container.env ?? []).map((e: Obj) => e.name);
      expect(
        names.filter((n: string) => !known.has(n)),
        where,
      ).toEqual([]);
      for (const source of container.envFrom ?? []) {
        expect(source.prefix, where).toBeUndefined();
        const keys = source.secretRef
          ? secretKeys(source.secretRef.name)
          : Object.keys(named('ConfigMap', source.configMapRef.name).data);
        expect(
          keys.filter((k) => !known.has(k)),
          where,
        ).toEqual([]);
      }
    }
  });

  it('give the server and the migration Job the same image and configuration', () => {
    const job = named('Job', 'context-server-migrate');
    const [migrate] = podSpecOf(job).containers as Obj[];
    expect(migrate!.image).toBe(server.image);
    expect(migrate!.envFrom).toEqual(server.envFrom);
    expect(migrate!.command).toEqual(['node', 'dist/scripts/migrate.js']);
    expect(existsSync('scripts/migrate.ts')).toBe(true); // compiled to dist/scripts/migrate.js
    expect(job.spec.backoffLimit).toBeGreaterThan(0);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(podSpecOf(job).restartPolicy).toBe('Never');
  });

  it('pass the server’s own configuration check in production, secrets and all', () => {
    const secrets = exampleSecret('context-server')!.stringData as Record<string, string>;
    // What an operator puts in place of the placeholders; the JWT secret and keys must parse.
    const realValues: Record<string, string> = { JWT_SECRET, ENCRYPTION_KEYS };
    const filled = Object.fromEntries(
      Object.entries(secrets).map(([k, v]) => [
        k,
        realValues[k] ?? v.replaceAll('REPLACE_ME', 'placeholder-1'),
      ]),
    );
    const config = loadConfig({ ...configMap.data, ...filled });
    expect(config.production).toBe(true);
    expect(config.database.url).toBeDefined();
    expect(config.redisUrl).toBeDefined(); // several replicas need the shared Redis
    expect(config.inference.modelDir).toBe('/app/models'); // where the Dockerfile puts them
    expect(existsSync('models/manifest.json')).toBe(true);
    expect(server.ports.find((p: Obj) => p.name === 'http').containerPort).toBe(config.port);
  });

  it('give the Secrets placeholders only, never values', () => {
    expect(secretKeys('context-server').sort()).toEqual(
      ['ADMIN_PASSWORD', 'DATABASE_URL', 'ENCRYPTION_KEYS', 'JWT_SECRET', 'REDIS_URL'].sort(),
    );
    for (const secret of exampleSecrets) {
      expect(secret.data, secret.metadata.name).toBeUndefined();
      for (const [key, value] of Object.entries(secret.stringData as Record<string, string>)) {
        expect(value, `${secret.metadata.name}.${key}`).toContain('REPLACE_ME');
      }
    }
    expect(readFileSync(path.join(K8S_DIR, '.gitignore'), 'utf8').split('\n')).toContain(
      'secret.yaml',
    );
  });
});

describe('k8s manifests: the pods', () => {
  it('let the server drain before the kubelet kills it', () => {
    const pod = podSpecOf(deployment);
    const preStop = server.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const preStopMs = Number(preStop[1]) * 1000;
    expect(preStopMs).toBeGreaterThan(0);
    const drainMs = loadConfig(configMap.data).shutdownGraceMs;
    // The grace period counts from the start of preStop, so it has to cover both.
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs + preStopMs);
  });

  it('run every container as non-root on a read-only root filesystem, with limits', () => {
    for (const workload of workloads()) {
      const pod = podSpecOf(workload);
      for (const container of containersOf(workload)) {
        const where = `${workload.metadata.name}/${container.name}`;
        const context = { ...pod.securityContext, ...container.securityContext };
        expect(context, where).toMatchObject({
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        expect(context.runAsUser, where).toBeGreaterThan(0);
        expect(container.resources?.requests?.memory, where).toBeDefined();
        expect(container.resources?.limits?.memory, where).toBeDefined();
        expect(container.image, where).toMatch(/^[^:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
        expect(container.image, where).not.toMatch(/:latest$/);
      }
    }
  });

  it('run the server as the image’s node user, with /tmp on an emptyDir', () => {
    for (const { workload, container } of serverContainers()) {
      const pod = podSpecOf(workload);
      expect(pod.securityContext).toMatchObject({ runAsUser: 1000, runAsGroup: 1000 });
      const tmp = container.volumeMounts.find((m: Obj) => m.mountPath === '/tmp');
      expect(pod.volumes.find((v: Obj) => v.name === tmp?.name)?.emptyDir).toBeDefined();
    }
  });

  it('probe the server on /ready and /health, and start it with a startupProbe', () => {
    expect(server.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
    expect(server.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(server.startupProbe.httpGet.port).toBe('http');
    const annotations = deployment.spec.template.metadata.annotations;
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(Number(annotations['prometheus.io/port'])).toBe(
      server.ports.find((p: Obj) => p.name === 'http').containerPort,
    );
  });

  describe('against the real server', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp();
    });
    afterAll(async () => {
      await app?.stop();
    });

    it('answers 200 on every probe path and the scrape path', async () => {
      const paths = new Set<string>([
        server.startupProbe.httpGet.path,
        server.readinessProbe.httpGet.path,
        server.livenessProbe.httpGet.path,
        deployment.spec.template.metadata.annotations['prometheus.io/path'],
      ]);
      for (const probePath of paths) {
        const res = await fetch(new URL(probePath, app.app.url));
        expect(res.status, probePath).toBe(200);
      }
    });
  });
});

describe('k8s manifests: kustomization.yaml', () => {
  const kustomization = parse(readFileSync(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8'));

  it('lists every manifest but the example Secret, and only files that exist', () => {
    expect(kustomization).toMatchObject({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
    });
    const resources = kustomization.resources as string[];
    for (const resource of resources) {
      expect(existsSync(path.join(K8S_DIR, resource)), resource).toBe(true);
    }
    const files = [...new Set(manifests.map((m) => m.file))];
    expect([...resources].sort()).toEqual(files.filter((f) => f !== 'secret.example.yaml').sort());
    expect(kustomization.namespace).toBeUndefined();
  });

  it('sets the server image and leaves selectors alone', () => {
    expect(kustomization.images.map((i: Obj) => i.name)).toEqual([SERVER_IMAGE]);
    expect(kustomization.commonLabels).toBeUndefined(); // would rewrite immutable selectors
    for (const entry of kustomization.labels ?? []) {
      expect(entry.includeSelectors).toBe(false);
    }
    expect(serverContainers().length).toBeGreaterThanOrEqual(2); // the server and the Job
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  it.skipIf(kubectl.status !== 0)(
    'builds with `kubectl kustomize`, and every object it renders is valid',
    () => {
      const built = spawnSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8' });
      expect(built.stderr).toBe('');
      expect(built.status).toBe(0);
      const rendered = parseAllDocuments(built.stdout).map((d) => d.toJS() as Obj);
      expect(rendered).toHaveLength(all.length - exampleSecrets.length);
      for (const doc of rendered) {
        expect(schemaProblems(doc), `${doc.kind} ${doc.metadata.name}`).toEqual([]);
      }
      const tag = kustomization.images[0].newTag;
      for (const workload of rendered.filter((d) => d.kind === 'Job' || d.kind === 'Deployment')) {
        for (const container of containersOf(workload).filter((c) => isServerImage(c.image))) {
          expect(container.image).toBe(`${kustomization.images[0].newName ?? SERVER_IMAGE}:${tag}`);
        }
      }
    },
  );
});
