/**
 * `tsx bench/profile-summary.ts <file.cpuprofile> [top] [filter] [fromS-toS]`: where a V8 CPU
 * profile (from `npm run bench -- --cpu-prof`) spends its time — a per-second timeline of
 * busy time, self time by function and by package or source folder, and inclusive time of
 * the functions whose location contains `filter` (e.g. `src/`), optionally only between
 * `fromS` and `toS` seconds after the profile started.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) {
    return pkg[1]!;
  }
  const src = /\/((?:src|bench|test)\/.*)$/.exec(url);
  if (src) {
    return src[1]!.split('/').slice(0, 2).join('/');
  }
  return url.startsWith('node:') ? url : url === '' ? '(native/vm)' : url;
}

function main(): void {
  const [file, topArg, filter, window] = process.argv.slice(2);
  const [fromS, toS] = (window ?? '0-1e9').split('-').map(Number) as [number, number];
  if (!file) {
    throw new Error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [top] [filter]');
  }
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) {
      parent.set(child, node.id);
    }
  }
  const selfMs = new Map<number, number>();
  const busyBySecond: number[] = [];
  let at = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    at += ms;
    const second = Math.floor(at / 1000);
    if (byId.get(id)!.callFrame.functionName !== '(idle)') {
      busyBySecond[second] = (busyBySecond[second] ?? 0) + ms;
    }
    if (at >= fromS * 1000 && at < toS * 1000) {
      selfMs.set(id, (selfMs.get(id) ?? 0) + ms);
    }
  });
  process.stdout.write(
    `busy ms per second: ${Array.from(busyBySecond, (b, i) => `${i}:${(b ?? 0).toFixed(0)}`).join(' ')}\n`,
  );
  const total = [...selfMs.values()].reduce((a, b) => a + b, 0);
  const label = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

  const bySelf = new Map<string, number>();
  const byPlace = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    bySelf.set(label(node), (bySelf.get(label(node)) ?? 0) + ms);
    byPlace.set(where(node.callFrame.url), (byPlace.get(where(node.callFrame.url)) ?? 0) + ms);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      const key = label(n);
      if (filter && n.callFrame.url.includes(filter) && !seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
      }
    }
  }
  const print = (title: string, map: Map<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    for (const [key, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(
        `${ms.toFixed(0).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${key}\n`,
      );
    }
  };
  process.stdout.write(`${file}: ${total.toFixed(0)} ms sampled\n`);
  print('self time by package / folder', byPlace);
  print('self time by function', bySelf);
  if (filter) {
    print(`inclusive time of functions in "${filter}"`, inclusive);
  }
}

main();
