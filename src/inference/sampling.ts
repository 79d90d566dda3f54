/**
 * Next-token sampling for the generative models: temperature, top-k and nucleus (top-p), with
 * a seeded generator so that a request with a `seed` is reproducible (and cacheable).
 */

export interface SamplingParameters {
  readonly temperature: number;
  readonly top_k: number;
  readonly top_p: number;
}

/**
 * A deterministic generator of numbers in [0, 1): mulberry32, which is small, fast and
 * passes the usual statistical batteries; it is not for secrets.
 * See https://gist.github.com/tommyettinger/46a874533244883189143505d203312c
 */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** True when token `a` ranks above token `b`: a larger logit, or the lower index on a tie. */
const ranksAbove = (logits: ArrayLike<number>, a: number, b: number): boolean =>
  logits[a]! > logits[b]! || (logits[a] === logits[b] && a < b);

/**
 * The `k` best-ranked candidate ids, best first. A bounded min-heap keeps this O(n log k): a
 * full sort of a word vocabulary at every decoding step would dominate generation time.
 */
function topK(logits: ArrayLike<number>, k: number, allowed: (id: number) => boolean): number[] {
  const heap: number[] = []; // heap[0] is the worst of the kept ids
  const worse = (i: number, j: number) => ranksAbove(logits, heap[j]!, heap[i]!);
  const swap = (i: number, j: number) => {
    [heap[i], heap[j]] = [heap[j]!, heap[i]!];
  };
  const siftDown = (start: number) => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(l, m)) {
        m = l;
      }
      if (r < heap.length && worse(r, m)) {
        m = r;
      }
      if (m === i) {
        return;
      }
      swap(i, m);
      i = m;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (!allowed(id)) {
      continue;
    }
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!worse(i, parent)) {
          break;
        }
        swap(i, parent);
        i = parent;
      }
    } else if (ranksAbove(logits, id, heap[0]!)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (ranksAbove(logits, a, b) ? -1 : 1));
}

/**
 * Draws the next token id. Temperature 0 is greedy (the highest logit, the lowest id on a tie).
 * Otherwise the `top_k` most likely ids are kept, then the smallest prefix of them whose share
 * of their probability is at least `top_p` (top-k first and the nucleus within it, as Hugging
 * Face's logits warpers do), and one is drawn in proportion to softmax(logit / temperature).
 * Ids in `exclude` (padding, unknown) and non-finite logits are never drawn.
 *
 * @throws RangeError when no token may be drawn at all.
 */
export function sampleToken(
  logits: Float32Array | number[],
  p: SamplingParameters,
  rng: () => number,
  exclude?: ReadonlySet<number>,
): number {
  // -Infinity is a legitimate "never", NaN would poison every comparison.
  const allowed = (id: number) => !exclude?.has(id) && Number.isFinite(logits[id]);
  const k = p.temperature > 0 ? Math.max(1, Math.floor(p.top_k)) : 1;
  const ranked = topK(logits, k, allowed);
  const best = ranked[0];
  if (best === undefined) {
    throw new RangeError('No token can be sampled: every id is excluded or has no finite logit');
  }
  if (ranked.length === 1) {
    return best;
  }

  // Subtracting the best logit keeps exp() from overflowing at small temperatures.
  const top = logits[best]!;
  const weights = ranked.map((id) => Math.exp((logits[id]! - top) / p.temperature));
  const total = weights.reduce((sum, w) => sum + w, 0);
  let kept = 0;
  let mass = 0;
  while (kept < ranked.length && (kept === 0 || mass < p.top_p * total)) {
    mass += weights[kept]!;
    kept++;
  }

  const target = rng() * mass;
  let cumulative = 0;
  for (let i = 0; i < kept; i++) {
    cumulative += weights[i]!;
    if (target < cumulative) {
      return ranked[i]!;
    }
  }
  // Rounding can leave `target` a hair above the last partial sum.
  return ranked[kept - 1]!;
}
