// `--chart out.svg`: p99 delivery latency against offered load, one line per system, as a
// self-contained SVG (no dependency, opens in any browser). Latency is on a log scale, since
// one saturated step is often a hundred times the others; the 100 ms "sustained" bound is drawn.
import { SUSTAINED_P99_MS } from './report.js';

export interface ChartSeries { name: string; points: { offered: number; p99Ms: number | null }[] }

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function chartSvg(title: string, series: ChartSeries[], xLabel = 'offered load (messages/s)'): string {
  const W = 760; const H = 440; const L = 70; const R = 170; const T = 40; const B = 56;
  const pts = series.flatMap((s) => s.points.filter((p) => p.p99Ms !== null && p.p99Ms > 0));
  const xMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.offered)));
  const yMin = Math.min(1, ...pts.map((p) => p.p99Ms!));
  const yMax = Math.max(SUSTAINED_P99_MS * 10, ...pts.map((p) => p.p99Ms!));
  const lo = Math.floor(Math.log10(yMin)); const hi = Math.ceil(Math.log10(yMax));
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => T + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const v = 10 ** e;
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`, `<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xMax * i) / 5;
    out.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${T}" y2="${H - B}" stroke="#f3f4f6"/>`, `<text x="${x(v)}" y="${H - B + 16}" text-anchor="middle">${Math.round(v).toLocaleString('en-US')}</text>`);
  }
  out.push(
    `<line x1="${L}" x2="${W - R}" y1="${y(SUSTAINED_P99_MS)}" y2="${y(SUSTAINED_P99_MS)}" stroke="#6b7280" stroke-dasharray="5 4"/>`,
    `<text x="${W - R - 4}" y="${y(SUSTAINED_P99_MS) - 5}" text-anchor="end" fill="#6b7280">p99 ${SUSTAINED_P99_MS} ms: sustained below</text>`,
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 14}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">p99 delivery latency (log)</text>`,
  );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const ps = s.points.filter((p) => p.p99Ms !== null && p.p99Ms > 0);
    if (ps.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${ps.map((p) => `${x(p.offered).toFixed(1)},${y(p.p99Ms!).toFixed(1)}`).join(' ')}"/>`);
    for (const p of ps) out.push(`<circle cx="${x(p.offered).toFixed(1)}" cy="${y(p.p99Ms!).toFixed(1)}" r="3.5" fill="${c}"><title>${esc(s.name)}: ${p.offered} offered, p99 ${p.p99Ms} ms</title></circle>`);
    out.push(`<rect x="${W - R + 14}" y="${T + 8 + i * 20}" width="14" height="4" fill="${c}"/>`, `<text x="${W - R + 34}" y="${T + 13 + i * 20}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
