// Draws a run's metrics.jsonl as an SVG: training loss (moving average of 20 steps, log scale, left)
// and held-out PSNR at each evaluation (right).   usage: node scripts/curve.mjs metrics.jsonl out.svg
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const rows = readFileSync(input, 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
const W = 640,
  H = 320,
  L = 56,
  R = 56,
  T = 24,
  B = 40;
const maxStep = Math.max(...rows.map((r) => r.step));
const x = (s) => L + ((W - L - R) * s) / maxStep;
const smooth = rows.map((r, i) => {
  const win = rows.slice(Math.max(0, i - 19), i + 1);
  return { step: r.step, loss: win.reduce((a, w) => a + w.loss, 0) / win.length };
});
const lo = Math.log10(Math.min(...smooth.map((p) => p.loss)));
const hi = Math.log10(Math.max(...smooth.map((p) => p.loss)));
const yLoss = (v) => T + ((H - T - B) * (hi - Math.log10(v))) / Math.max(1e-9, hi - lo);
const evals = rows.filter((r) => typeof r.psnr === 'number');
const pLo = Math.floor(Math.min(...evals.map((r) => r.psnr), 10));
const pHi = Math.ceil(Math.max(...evals.map((r) => r.psnr), 20));
const yPsnr = (v) => T + ((H - T - B) * (pHi - v)) / (pHi - pLo);
const path = smooth
  .map((p, i) => `${i ? 'L' : 'M'}${x(p.step).toFixed(1)},${yLoss(p.loss).toFixed(1)}`)
  .join('');
const dots = evals
  .map((r) => `<circle cx="${x(r.step).toFixed(1)}" cy="${yPsnr(r.psnr).toFixed(1)}" r="3" fill="#c0392b"/>`)
  .join('');
const psnrLine = evals
  .map((r, i) => `${i ? 'L' : 'M'}${x(r.step).toFixed(1)},${yPsnr(r.psnr).toFixed(1)}`)
  .join('');
const text = (tx, ty, s, anchor = 'start', fill = '#333') =>
  `<text x="${tx}" y="${ty}" font-size="11" font-family="sans-serif" text-anchor="${anchor}" fill="${fill}">${s}</text>`;
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
<rect width="${W}" height="${H}" fill="#fff"/>
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>
<path d="${path}" fill="none" stroke="#2c7fb8" stroke-width="1.5"/>
<path d="${psnrLine}" fill="none" stroke="#c0392b" stroke-width="1" stroke-dasharray="3,2"/>${dots}
${text(L, T - 8, `training loss (mean of 20 steps, log scale) — ${rows.length} steps`, 'start', '#2c7fb8')}
${text(W - R, T - 8, 'held-out PSNR (dB)', 'end', '#c0392b')}
${text(L - 4, T + 10, (10 ** hi).toFixed(3), 'end', '#2c7fb8')}${text(L - 4, H - B, (10 ** lo).toFixed(3), 'end', '#2c7fb8')}
${text(W - R + 4, T + 10, pHi, 'start', '#c0392b')}${text(W - R + 4, H - B, pLo, 'start', '#c0392b')}
${text(L, H - B + 16, '0', 'middle')}${text(W - R, H - B + 16, maxStep, 'middle')}${text(W / 2, H - 8, 'step', 'middle')}
</svg>
`;
writeFileSync(output, svg);
