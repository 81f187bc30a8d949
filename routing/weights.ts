// fabio's weight semantics, extended with per-instance weights.
//
// fabio: targets with a fixed weight (`weight 0.2`, `route weight ...`) get that share first; if
// the fixed shares add up to more than 100 %, or all targets are fixed, they are normalised to
// 100 %; the rest is split evenly among the other targets (nothing left: they are starved).
// Cairn: "evenly" becomes "in proportion to each target's instance weight" (`lbweight`, Consul
// `Weights`), which is fabio's rule again when every instance weight is 1.
//
// Balancers need integers. Without fixed weights the integer weights are the instance weights
// themselves; with fixed weights the shares are quantised to fabio's 10,000-slot ring (every
// target with a share gets at least one slot). Both are reduced by their gcd so the smooth
// round-robin cycle is as short as it can be.

export const ringSlots = 10_000;

export interface WeightInput {
  readonly fixedWeight: number;
  readonly instanceWeight: number;
}

export interface WeightDistribution {
  /** Effective share per target, 0..1 (sums to 1 unless everything is starved). */
  readonly shares: number[];
  /** Integer balancer weight per target, 0 for starved targets. */
  readonly weights: number[];
}

export function distributeWeights(targets: readonly WeightInput[]): WeightDistribution {
  const n = targets.length;
  const shares = new Array<number>(n).fill(0);
  const weights = new Array<number>(n).fill(0);
  if (n === 0) return { shares, weights };

  let nFixed = 0;
  let sumFixed = 0;
  let sumDynamicIw = 0;
  for (const t of targets) {
    if (t.fixedWeight > 0) {
      nFixed++;
      sumFixed += t.fixedWeight;
    } else {
      sumDynamicIw += t.instanceWeight;
    }
  }

  if (nFixed === 0) {
    for (let i = 0; i < n; i++) {
      const iw = (targets[i] as WeightInput).instanceWeight;
      shares[i] = iw / sumDynamicIw;
      weights[i] = iw;
    }
    return { shares, weights: reduceByGcd(weights) };
  }

  const scale = sumFixed > 1 || (nFixed === n && sumFixed < 1) ? 1 / sumFixed : 1;
  const remaining = Math.max(0, 1 - sumFixed);
  for (let i = 0; i < n; i++) {
    const t = targets[i] as WeightInput;
    const share =
      t.fixedWeight > 0
        ? t.fixedWeight * scale
        : sumDynamicIw > 0
          ? (remaining * t.instanceWeight) / sumDynamicIw
          : 0;
    shares[i] = share;
    // fabio truncates share * 10000; the epsilon absorbs float noise like 0.29 * 10000 = 2899.99...
    let slots = Math.floor(share * ringSlots + 1e-7);
    if (slots === 0 && share > 1e-12) slots = 1;
    weights[i] = slots;
  }
  return { shares, weights: reduceByGcd(weights) };
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

export function reduceByGcd(weights: number[]): number[] {
  let g = 0;
  for (const w of weights) if (w > 0) g = gcd(g, w);
  if (g <= 1) return weights;
  return weights.map((w) => w / g);
}
