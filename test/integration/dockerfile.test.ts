import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env';

/**
 * The Dockerfile's essentials, checked offline (no Docker engine here, and hadolint is in
 * neither npm nor Debian): a small parser gives each build stage its instructions.
 */

interface Instruction {
  readonly keyword: string;
  /** The arguments, continuation lines joined. */
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let logical = lines[i]!;
    if (/^\s*(#|$)/.test(logical)) {
      continue;
    }
    while (logical.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      // Comment lines inside a continuation are dropped, as Docker does.
      logical = logical.slice(0, -1) + (/^\s*#/.test(next) ? '\\' : ` ${next.trim()}`);
    }
    const match = /^\s*(\w+)\s+(.*)$/s.exec(logical);
    if (!match) {
      throw new Error(`Dockerfile:${start + 1}: cannot read "${logical}"`);
    }
    instructions.push({
      keyword: match[1]!.toUpperCase(),
      args: match[2]!.trim(),
      line: start + 1,
    });
  }
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args
        .split(/\s+/)
        .filter((word) => !word.startsWith('--'));
      stages.push({
        image: image!,
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') {
        throw new Error(`Dockerfile:${instruction.line}: ${instruction.keyword} before FROM`);
      }
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** Flags (`--from=build`) and the words after them of a COPY. */
function copyOf(instruction: Instruction): {
  from: string | undefined;
  sources: string[];
  destination: string;
} {
  const words = instruction.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** Exec-form arguments (`["node", "x.js"]`); shell form is refused where signals matter. */
const execForm = (args: string): string[] => JSON.parse(args) as string[];

/**
 * Whether .dockerignore keeps `file` out of the build context: Docker's rules, in order, the
 * last matching pattern winning, `!` re-including, and a pattern that matches a directory
 * excluding everything below it.
 */
function ignored(patterns: string[], file: string): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')}$`,
    );
  const prefixes = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let result = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = path.posix.normalize(raw.slice(negated ? 1 : 0)).replace(/^\/|\/$/g, '');
    if (prefixes.some((p) => toRegExp(pattern).test(p))) {
      result = !negated;
    }
  }
  return result;
}

const stages = parseDockerfile(readFileSync('Dockerfile', 'utf8'));
const final = stages.at(-1)!;
const dockerignore = readFileSync('.dockerignore', 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stageNamed = (name: string) => stages.find((s) => s.name === name);
const runs = (stage: Stage) =>
  stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const omitsDevDependencies = (command: string) =>
  /\bnpm (ci|install|prune)\b[^&;|]*(--omit[= ]dev|--production)\b/.test(command);

describe('Dockerfile', () => {
  it('builds in stages and runs on the Node 20 slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(final.image).toBe('node:20-bookworm-slim');
    const names = stages.map((s) => s.name).filter(Boolean);
    expect(new Set(names).size).toBe(names.length);
  });

  it('pins every base image to a tag or digest other than latest', () => {
    for (const stage of stages) {
      if (stage.image === 'scratch' || stageNamed(stage.image)) {
        continue;
      }
      expect(stage.image).toMatch(/^[^:@\s]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/);
      expect(stage.image).toMatch(/:[\w.-]+|@sha256:/);
      expect(stage.image).not.toMatch(/:latest\b/);
    }
  });

  it('compiles with the dev dependencies but ships only the production ones', () => {
    const build = stages.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));
    expect(build, 'a stage runs `npm run build`').toBeDefined();
    expect(build).not.toBe(final);

    const copies = final.instructions.filter((i) => i.keyword === 'COPY').map(copyOf);
    const modules = copies.filter((c) => c.sources.some((s) => /(^|\/)node_modules\/?$/.test(s)));
    if (modules.length === 0) {
      expect(runs(final).some(omitsDevDependencies)).toBe(true);
    }
    for (const copy of modules) {
      const source = stageNamed(copy.from ?? '');
      expect(source, `node_modules come from a named stage`).toBeDefined();
      const npm = runs(source!).filter((r) => /\bnpm (ci|install|prune)\b/.test(r));
      // The last npm command that shaped node_modules dropped the dev dependencies.
      expect(npm.length).toBeGreaterThan(0);
      expect(omitsDevDependencies(npm.at(-1)!), npm.at(-1)).toBe(true);
    }
  });

  it('never runs install scripts that download from outside the npm registry', () => {
    for (const stage of stages) {
      const skipped = stage.instructions.some(
        (i) => i.keyword === 'ENV' && /ONNXRUNTIME_NODE_INSTALL=skip/.test(i.args),
      );
      for (const command of runs(stage).filter((r) => /\bnpm (ci|install)\b/.test(r))) {
        expect(skipped || /--ignore-scripts/.test(command), command).toBe(true);
      }
    }
  });

  it('copies the compiled server, the shipped models and the schema into the final stage', () => {
    const copies = final.instructions.filter((i) => i.keyword === 'COPY').map(copyOf);
    const fromBuild = copies.filter((c) => c.from !== undefined).flatMap((c) => c.sources);
    expect(fromBuild).toContain('/app/dist');
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(fromContext).toEqual(expect.arrayContaining(['models', 'schema.graphql']));
    expect(fromContext).not.toContain('src'); // TypeScript sources stay in the build stage
    expect(final.instructions.find((i) => i.keyword === 'WORKDIR')?.args).toBe('/app');
  });

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    for (const stage of stages) {
      for (const instruction of stage.instructions.filter((i) => i.keyword === 'COPY')) {
        const copy = copyOf(instruction);
        if (copy.from !== undefined) {
          expect(stageNamed(copy.from), `line ${instruction.line}`).toBeDefined();
          continue;
        }
        for (const source of copy.sources) {
          expect(existsSync(source), `line ${instruction.line}: ${source}`).toBe(true);
          expect(ignored(dockerignore, source), `${source} is in .dockerignore`).toBe(false);
        }
      }
    }
  });

  it('adds nothing from remote URLs', () => {
    for (const stage of stages) {
      for (const add of stage.instructions.filter((i) => i.keyword === 'ADD')) {
        expect(add.args).not.toMatch(/(https?|git|ftp):\/\/|git@/);
      }
    }
  });

  it('runs as the non-root node user, from before the command on', () => {
    const keywords = final.instructions.map((i) => i.keyword);
    const users = final.instructions.filter((i) => i.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.args).toMatch(/^(node|1000)(:\S+)?$/);
    expect(keywords.lastIndexOf('USER')).toBeLessThan(keywords.lastIndexOf('CMD'));
  });

  it('starts the compiled main with node itself, so SIGTERM reaches the server', () => {
    const cmd = final.instructions.filter((i) => i.keyword === 'CMD').at(-1)!;
    const argv = execForm(cmd.args);
    expect(argv[0]).toBe('node');
    expect(argv.at(-1)).toBe('dist/src/main.js');
    expect(existsSync('src/main.ts')).toBe(true); // tsc: rootDir ".", outDir "dist"
    expect(final.instructions.some((i) => i.keyword === 'ENTRYPOINT')).toBe(false);
  });

  it('exposes the server’s port and checks its health on /health', () => {
    const port = String(loadConfig({}).port);
    expect(final.instructions.find((i) => i.keyword === 'EXPOSE')?.args).toBe(port);
    const healthcheck = final.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    expect(healthcheck?.args).toMatch(/\bCMD\b/);
    expect(healthcheck?.args).toMatch(/\/health\b/);
  });
});

describe('.dockerignore', () => {
  it.each(['node_modules', '.git', '.data', 'dist', 'coverage', '.env'])(
    'keeps %s out of the build context',
    (entry) => {
      expect(ignored(dockerignore, entry)).toBe(true);
      expect(ignored(dockerignore, `${entry}/some/file`)).toBe(true);
    },
  );

  it('lets in what the image is built from', () => {
    for (const file of ['package.json', 'package-lock.json', '.npmrc', 'src/main.ts', 'models']) {
      expect(ignored(dockerignore, file), file).toBe(false);
    }
  });
});
