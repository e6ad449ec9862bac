// The soak's conclusion from its minutes (scenarios/soak.ts), apart from the scenario so that it
// can be tested on made-up minutes.
import { median, type StepResult } from './report.js';

const FLAT = 1.1;
/** The generators' CPU in one step, all worker processes together (% of one core). */
export const generatorCpu = (x: StepResult) => x.generatorCpuPct.reduce((a, b) => a + b, 0);
export const r2 = (v: number) => (Number.isFinite(v) ? Math.round(v * 100) / 100 : null);

export type SoakVerdict = 'flat' | 'flat at the machine\'s speed' | 'not flat';

/** What a soak concludes from its steps (the first one warms up). Pairs are [minutes 2-6, last five]. */
export interface SoakJudgement {
  rss: [number, number];
  p99: [number, number];
  gen: [number, number];
  /** The node's CPU per unit of the generators'. */
  cost: [number, number];
  /** The p99 against the machine's speed and the minute (null with too few minutes to tell). */
  fit: { elasticity: number; ratio: number; margin: number } | null;
  lost: number;
  unacked: number;
  verdict: SoakVerdict;
  lines: string[];
}

/**
 * Minutes 2-6 against the last five (medians; with fewer than 11 steps, as many as fit on both
 * sides: at least one). RSS, lost and unacked decide alone. The p99 also moves with the machine:
 * the generators do the same work every minute, so their CPU per minute is the machine's speed,
 * and over minutes 2-N the p99 is fitted as ln p99 = a + b ln(generators' CPU) + c minute. b is
 * how much the p99 moves with the machine; exp(c x the minutes between the two windows' middles)
 * is the ratio the p99 would show had the machine kept one speed. A run is flat when both ratios
 * are within 1.1x; "flat at the machine's speed" when only the second is.
 */
export function judgeSoak(steps: StepResult[]): SoakJudgement {
  const k = Math.min(5, Math.floor((steps.length - 1) / 2));
  const first = steps.slice(1, 1 + k);
  const last = steps.slice(-k);
  const pair = (f: (xs: StepResult[]) => number): [number, number] => [f(first), f(last)];
  const rss = pair((xs) => median(xs.map((x) => x.serverRssMiB)));
  const p99 = pair((xs) => median(xs.map((x) => x.p99Ms ?? Infinity)));
  const gen = pair((xs) => median(xs.map(generatorCpu)));
  const cost = pair((xs) => median(xs.map((x) => x.serverCpuPct / generatorCpu(x))));
  const lost = steps.reduce((n, x) => n + x.lost, 0);
  const unacked = steps.reduce((n, x) => n + x.unacked, 0);
  const fit = fitDrift(steps.slice(1), (steps.length - 1) - k);
  const ratio = (x: [number, number]) => x[1] / x[0];
  const held = ratio(rss) <= FLAT && lost === 0 && unacked === 0;
  const atSpeed = fit ? fit.ratio : ratio(p99);
  const verdict: SoakVerdict = !held || atSpeed > FLAT ? 'not flat' : ratio(p99) <= FLAT ? 'flat' : 'flat at the machine\'s speed';
  const x = (v: number) => `x${v.toFixed(2)}`;
  const lines = [
    `minutes ${k > 1 ? `2-${1 + k}` : '2'} vs the last ${k} (medians): RSS ${rss[0].toFixed(0)} -> ${rss[1].toFixed(0)} MiB (${x(ratio(rss))}), p99 ${p99[0]} -> ${p99[1]} ms (${x(ratio(p99))}); lost ${lost}, unacked ${unacked}`,
    `the generators' CPU, the same work every minute (the machine's speed): ${gen[0].toFixed(1)} -> ${gen[1].toFixed(1)} % (${x(ratio(gen))}); the node's CPU per unit of theirs: ${cost[0].toFixed(2)} -> ${cost[1].toFixed(2)} (${x(ratio(cost))})`,
    fit
      ? `p99 at the machine's speed (fitted over minutes 2-${steps.length}: p99 moves as the generators' CPU to the power ${fit.elasticity.toFixed(2)}): ${x(fit.ratio)} (+-${fit.margin.toFixed(2)})`
      : `p99 at the machine's speed: too few minutes to fit`,
    `verdict (RSS and p99 within x${FLAT}, nothing lost): ${verdict === 'flat' ? 'flat' : verdict === 'not flat' ? 'NOT flat' : `flat at the machine's speed (the p99 of the last five moved with the machine)`}`,
  ];
  return { rss, p99, gen, cost, fit, lost, unacked, verdict, lines };
}

/**
 * Least squares of ln p99 on ln(generators' CPU) and the minute, over `steps` (minutes 2-N);
 * `gap` minutes between the middles of the two windows. Null with fewer than 6 usable minutes.
 * `margin` is two standard errors of the ratio's logarithm, as a factor's distance from 1.
 */
function fitDrift(steps: StepResult[], gap: number): { elasticity: number; ratio: number; margin: number } | null {
  const pts = steps.flatMap((x, i) => (x.p99Ms && x.p99Ms > 0 && generatorCpu(x) > 0 ? [{ y: Math.log(x.p99Ms), u: Math.log(generatorCpu(x)), t: i }] : []));
  const n = pts.length;
  if (n < 6) return null;
  const sum = (f: (p: (typeof pts)[number]) => number) => pts.reduce((a, p) => a + f(p), 0);
  const [my, mu, mt] = [sum((p) => p.y) / n, sum((p) => p.u) / n, sum((p) => p.t) / n];
  const suu = sum((p) => (p.u - mu) ** 2), stt = sum((p) => (p.t - mt) ** 2), sut = sum((p) => (p.u - mu) * (p.t - mt));
  const suy = sum((p) => (p.u - mu) * (p.y - my)), sty = sum((p) => (p.t - mt) * (p.y - my));
  const det = suu * stt - sut * sut;
  if (!(det > 1e-12)) return null;
  const b = (suy * stt - sty * sut) / det;
  const c = (sty * suu - suy * sut) / det;
  const sse = sum((p) => (p.y - my - b * (p.u - mu) - c * (p.t - mt)) ** 2);
  const seC = Math.sqrt((sse / (n - 3)) * (suu / det));
  return { elasticity: b, ratio: Math.exp(c * gap), margin: Math.exp(2 * seC * gap) - 1 };
}
