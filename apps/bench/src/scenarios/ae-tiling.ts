import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { DcAeConfig, ExecutionOptions } from '@dcae/autoencoder';
import {
  DC_AE_PRESETS,
  estimateActivationBytes,
  spatialCompressionRatio,
  validateDcAeConfig,
} from '@dcae/autoencoder';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { summarize } from '../measure.js';
import { dcAeRandomTensors, ensureRandomCheckpoint } from '../random-weights.js';
import type { Figure, Scenario, Series } from '../scenario.js';

/**
 * DC-AE decode at large sizes: whole frame against tiles (time per megapixel, peak RSS), fp16
 * against fp32 (time, error), and a full-size f128c512 decoder (2.8 GB of float32 weights) loaded
 * through external data (peak RSS against weight bytes). Models have random weights, written once
 * into the cache directory tensor by tensor.
 */

const MB = 1e6;
const SANA = DC_AE_PRESETS['dc-ae-f32c32-sana-1.0'];

/** The sana architecture at tiny widths (the golden fixture's shape): cheap at any image size. */
const TINY: DcAeConfig = {
  ...SANA,
  latentChannels: 8,
  encoder: { ...SANA.encoder, blockOutChannels: [8, 16, 32, 32, 64, 64], layersPerBlock: [1, 1, 1, 1, 1, 2] },
  decoder: { ...SANA.decoder, blockOutChannels: [8, 16, 32, 32, 64, 64], layersPerBlock: [1, 1, 2, 1, 1, 2] },
};

type Part = 'encoder' | 'decoder';

/** What the measuring child process is asked to do. */
interface ChildSpec {
  readonly urls: { readonly autoencoder: string; readonly runtime: string };
  readonly folder: string;
  readonly config: DcAeConfig;
  readonly parts: readonly Part[];
  readonly dtype: 'fp32' | 'fp16';
  /** Latent shape to decode. */
  readonly latent: readonly number[];
  readonly run: ExecutionOptions;
  /** Timed decodes after the first (which includes graph build and session setup). */
  readonly repeats: number;
  readonly exportDir?: string;
}

/** Memory figures (bytes) from /proc/self/status: current RSS and its high-water mark. */
interface Memory {
  readonly rss: number;
  readonly hwm: number;
}

interface ChildResult {
  readonly baseline: Memory;
  readonly afterSession: Memory;
  readonly afterRuns: Memory;
  /** ms: loadAutoencoder, graph build, session creation, the first decode's runs, later decodes. */
  readonly loadMs: number;
  readonly buildMs: number;
  readonly sessionMs: number;
  readonly firstRunMs: number;
  readonly runMs: readonly number[];
  readonly runs: number;
  readonly exported?: readonly { readonly name: string; readonly size: number }[];
}

/**
 * The child: loads the model, decodes a random latent, reports times and VmHWM (peak RSS) as one
 * JSON line. A separate process per case, so each peak is that case's alone. Plain JavaScript,
 * written next to the cache and given the packages' resolved URLs.
 */
const CHILD = String.raw`
import { readFileSync } from 'node:fs';
const spec = JSON.parse(process.argv[2]);
const { loadAutoencoder, exportOnnx } = await import(spec.urls.autoencoder);
const { createNodeRuntime } = await import(spec.urls.runtime);
const memory = () => {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kB = (key) => Number(new RegExp(key + ':\\s+(\\d+) kB').exec(status)[1]) * 1024;
  return { rss: kB('VmRSS'), hwm: kB('VmHWM') };
};
const baseline = memory();
const now = () => performance.now();
const marks = {};
let afterSession;
const runtime = createNodeRuntime();
const t0 = now();
const ae = await loadAutoencoder(spec.folder, {
  runtime, config: spec.config, parts: spec.parts, dtype: spec.dtype,
  onProgress: (e) => {
    if (e.done === 0) marks[e.stage] ??= now();
    if (e.done === e.total) marks[e.stage + 'End'] = now();
    if (e.stage === 'session' && e.done === 1) afterSession = memory();
  },
});
const loaded = now();
// Standard normal latent (xorshift + Box-Muller), the same for every case of one shape.
let state = 0x9e3779b9;
const uniform = () => { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return ((state >>> 0) + 0.5) / 4294967296; };
const count = spec.latent.reduce((a, b) => a * b, 1);
const data = new Float32Array(count);
for (let i = 0; i < count; i++) data[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
const latent = { dtype: 'float32', shape: spec.latent, data };
let runs = 0;
const check = (image) => {
  const f = ae.spatialCompressionRatio;
  const want = [spec.latent[0], 3, spec.latent[2] * f, spec.latent[3] * f].join();
  if (image.shape.join() !== want) throw new Error('decoded shape ' + image.shape.join() + ', expected ' + want);
  if (!image.data.every(Number.isFinite)) throw new Error('decoded image has non-finite values');
};
const onProgress = (e) => { if (e.stage === 'decode') runs = e.total; };
check(await ae.decode(latent, { ...spec.run, onProgress }));
const runMs = [];
for (let i = 0; i < spec.repeats; i++) {
  const start = now();
  check(await ae.decode(latent, spec.run));
  runMs.push(now() - start);
}
const afterRuns = memory();
const exported = spec.exportDir ? (await exportOnnx(ae, spec.exportDir, { overwrite: true })).files : undefined;
await ae.dispose();
await runtime.dispose();
process.stdout.write(JSON.stringify({
  baseline, afterSession, afterRuns, runs, runMs, exported,
  loadMs: loaded - t0,
  buildMs: marks.buildEnd - marks.build,
  sessionMs: marks.sessionEnd - marks.session,
  firstRunMs: marks.decodeEnd - marks.decode,
}) + '\n');
`;

async function runChild(cacheDir: string, spec: ChildSpec): Promise<ChildResult> {
  const script = join(cacheDir, 'ae-tiling-child.mjs');
  await writeFile(script, CHILD);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').at(-1);
      if (code === 0 && line) resolve(JSON.parse(line) as ChildResult);
      else reject(new Error(`measuring child exited with ${code}: ${stderr.trim().slice(-2000)}`));
    });
  });
}

/** One decode case measured in its own process. */
interface Measured {
  readonly name: string;
  readonly megapixels: number;
  readonly result: ChildResult;
  readonly estimate: number;
}

const peakMB = (m: Measured): number => m.result.afterRuns.hwm / MB;
/** Per-decode time: the timed repeats, else the first decode's runs (session setup excluded). */
const decodeSamples = (m: Measured): number[] =>
  m.result.runMs.length > 0 ? [...m.result.runMs] : [m.result.firstRunMs];

export const aeTiling: Scenario = {
  name: 'ae-tiling',
  title: 'DC-AE decode: tiled vs full frame, fp16 vs fp32, a 2.8 GB decoder',
  description:
    'Decodes random latents with random-weight DC-AE decoders, each case in its own child process so that ' +
    'its peak RSS (VmHWM) is its own: the sana architecture at tiny widths at 1024², 2048² and 4096² and the ' +
    'full-width dc-ae-f32c32-in-1.0 decoder at 1024², whole frame (`tiling: "never"`) against tiles (512 px, ' +
    'stride 448, `tiling: "always"`); time per megapixel excludes graph build and session setup. fp16 against ' +
    'fp32: the tiny model at 1024² in this process, with max_abs(fp16 − fp32) ÷ max|fp32|. Big weights: a ' +
    'dc-ae-f128c512-in-1.0 decoder (2.8 GB float32, external data pointing into the safetensors) loaded and run ' +
    'on a 1×512×1×1 latent (128² px), peak RSS after session setup against the weight bytes, then exported ' +
    'with `exportOnnx` (weights over 1 GiB go to `decoder.onnx_data`). Quick: 128²/256² with 64 px tiles, no ' +
    'full-width model, the tiny decoder in place of f128c512.',
  async run(context) {
    const { quick } = context;
    const log = (message: string): void => context.log(message);
    const cache = join(context.cacheDir, 'ae-tiling');
    await mkdir(cache, { recursive: true });
    const urls = {
      autoencoder: import.meta.resolve('@dcae/autoencoder/node'),
      runtime: import.meta.resolve('@dcae/runtime-adapters/node'),
    };
    validateDcAeConfig(TINY);
    const tiny = await ensureRandomCheckpoint(
      join(cache, 'tiny-sana'),
      dcAeRandomTensors(TINY, ['decoder']),
      { log },
    );
    const tiles = quick ? { tileSize: 64, overlap: 32 } : ('always' as const);
    const measured: Measured[] = [];
    const figures: Figure[] = [];
    const ratios: { of: string; to: string }[] = [];
    const notes: string[] = [];

    const measure = async (
      name: string,
      config: DcAeConfig,
      folder: string,
      side: number,
      run: ExecutionOptions,
      repeats: number,
    ): Promise<Measured> => {
      const f = spatialCompressionRatio(config);
      log(`${name}: decoding in a child process`);
      const result = await runChild(cache, {
        urls,
        folder,
        config,
        parts: ['decoder'],
        dtype: 'fp32',
        latent: [1, config.latentChannels, side / f, side / f],
        run,
        repeats,
      });
      const tileSide =
        run.tiling === 'never' ? side : Math.min(side, typeof tiles === 'object' ? tiles.tileSize : 512);
      const m = {
        name,
        megapixels: (side * side) / 1e6,
        result,
        estimate: estimateActivationBytes(config, 'decoder', tileSide, tileSide),
      };
      measured.push(m);
      return m;
    };

    // Tiny widths: whole frame against tiles.
    for (const side of quick ? [128, 256] : [1024, 2048, 4096]) {
      const whole = await measure(
        `tiny ${side}² full frame`,
        TINY,
        tiny.folder,
        side,
        { tiling: 'never' },
        1,
      );
      const tiled = await measure(`tiny ${side}² tiled`, TINY, tiny.folder, side, { tiling: tiles }, 1);
      ratios.push({ of: tiled.name, to: whole.name });
      notes.push(`${tiled.name}: ${tiled.result.runs} tiles per decode.`);
    }

    // Full width (dc-ae-f32c32-in-1.0 decoder, 200 M parameters) at 1024².
    if (!quick) {
      const config = DC_AE_PRESETS['dc-ae-f32c32-in-1.0'];
      const full = await ensureRandomCheckpoint(
        join(cache, 'f32c32-in-decoder'),
        dcAeRandomTensors(config, ['decoder']),
        {
          log,
        },
      );
      const whole = await measure(
        'f32c32-in 1024² full frame',
        config,
        full.folder,
        1024,
        { tiling: 'never' },
        0,
      );
      const tiled = await measure(
        'f32c32-in 1024² tiled',
        config,
        full.folder,
        1024,
        { tiling: 'always' },
        0,
      );
      ratios.push({ of: tiled.name, to: whole.name });
      figures.push({ name: 'f32c32-in decoder weights', value: full.bytes / MB, unit: 'MB' });
    } else {
      notes.push('Quick mode: the full-width f32c32-in decoder (800 MB of weights) is skipped.');
    }

    for (const m of measured) {
      figures.push({
        name: `${m.name}: time per megapixel`,
        value: decodeSamples(m)[0]! / m.megapixels,
        unit: 'ms/MP',
      });
      figures.push({ name: `${m.name}: peak RSS`, value: peakMB(m), unit: 'MB' });
      figures.push({ name: `${m.name}: activation estimate per run`, value: m.estimate / MB, unit: 'MB' });
    }

    // fp16 against fp32, in this process.
    const fp16Side = quick ? 128 : 1024;
    const runtime = await context.runtime();
    const load = (dtype: 'fp32' | 'fp16') =>
      loadAutoencoder(tiny.folder, { runtime, config: TINY, parts: ['decoder'], dtype });
    const [ae32, ae16] = [await load('fp32'), await load('fp16')];
    let fp16Series: Series[] = [];
    try {
      const latent = createRng(3).randn([1, TINY.latentChannels, fp16Side / 32, fp16Side / 32]);
      const [out32, out16] = [
        await ae32.decode(latent, { tiling: 'never' }),
        await ae16.decode(latent, { tiling: 'never' }),
      ];
      figures.push({
        name: `fp16 vs fp32 at ${fp16Side}²: max_abs(fp16 − fp32) ÷ max|fp32|`,
        value: relativeError(out16, out32),
        unit: '',
      });
      fp16Series = await context.compare([
        { name: `tiny ${fp16Side}² fp32 (in process)`, run: () => ae32.decode(latent, { tiling: 'never' }) },
        { name: `tiny ${fp16Side}² fp16 (in process)`, run: () => ae16.decode(latent, { tiling: 'never' }) },
      ]);
      ratios.push({ of: fp16Series[1]!.name, to: fp16Series[0]!.name });
    } finally {
      await Promise.all([ae32.dispose(), ae16.dispose()]);
    }

    // Big weights: a full-size f128c512 decoder through external data, then exported.
    const bigConfig = quick ? TINY : DC_AE_PRESETS['dc-ae-f128c512-in-1.0'];
    const big = quick
      ? tiny
      : await ensureRandomCheckpoint(
          join(cache, 'f128c512-in-decoder'),
          dcAeRandomTensors(bigConfig, ['decoder']),
          {
            log,
          },
        );
    const exportDir = join(cache, 'export');
    const side = quick ? 64 : 128;
    log(`big weights: loading ${(big.bytes / MB).toFixed(0)} MB of decoder weights in a child process`);
    const bigResult = await runChild(cache, {
      urls,
      folder: big.folder,
      config: bigConfig,
      parts: ['decoder'],
      dtype: 'fp32',
      latent: [
        1,
        bigConfig.latentChannels,
        side / spatialCompressionRatio(bigConfig),
        side / spatialCompressionRatio(bigConfig),
      ],
      run: { tiling: 'never' },
      repeats: 1,
      exportDir,
    });
    await rm(exportDir, { recursive: true, force: true });
    const label = quick ? 'tiny decoder (stand-in)' : 'f128c512-in decoder';
    figures.push(
      { name: `${label}: weight bytes`, value: big.bytes / MB, unit: 'MB' },
      { name: `${label}: peak RSS after session setup`, value: bigResult.afterSession.hwm / MB, unit: 'MB' },
      { name: `${label}: peak RSS ÷ weight bytes`, value: bigResult.afterSession.hwm / big.bytes, unit: '×' },
      {
        name: `${label}: (peak RSS − RSS before loading) ÷ weight bytes`,
        value: (bigResult.afterSession.hwm - bigResult.baseline.rss) / big.bytes,
        unit: '×',
      },
      { name: `${label}: peak RSS after decoding ${side}²`, value: bigResult.afterRuns.hwm / MB, unit: 'MB' },
      {
        name: `${label}: RSS before loading (node + modules)`,
        value: bigResult.baseline.rss / MB,
        unit: 'MB',
      },
      { name: `${label}: graph build`, value: bigResult.buildMs, unit: 'ms' },
      { name: `${label}: session setup`, value: bigResult.sessionMs, unit: 'ms' },
      { name: `${label}: decode ${side}²`, value: bigResult.runMs[0]!, unit: 'ms' },
    );
    const exported = bigResult.exported ?? [];
    notes.push(
      `${label} export: ${exported.map((f) => `${f.name} ${(f.size / MB).toFixed(1)} MB`).join(', ')}.`,
    );
    if (!quick && !exported.some((f) => f.name === 'decoder.onnx_data'))
      throw new Error('exportOnnx kept a 2.8 GB decoder inline');

    const series: Series[] = [
      ...measured.map((m) => summarize(m.name, decodeSamples(m))),
      summarize(`${label} decode ${side}²`, bigResult.runMs),
      ...fp16Series,
    ];
    return {
      params: {
        sizes: quick ? '128, 256' : '1024, 2048, 4096',
        tiles: typeof tiles === 'object' ? `${tiles.tileSize}/${tiles.overlap}` : '512/64 (stride 448)',
        tinyDecoderMB: tiny.bytes / MB,
        bigDecoder: label,
        bigWeightsMB: big.bytes / MB,
      },
      series,
      ratios,
      figures,
      notes: [
        ...notes,
        'Case series are single decodes in a fresh child process (one measured decode after a first one that ' +
          "includes graph build and session setup; the full-width cases time the first decode's runs only).",
      ],
    };
  },
};

function relativeError(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  let diff = 0;
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    diff = Math.max(diff, Math.abs(a.data[i]! - b.data[i]!));
    max = Math.max(max, Math.abs(b.data[i]!));
  }
  return diff / max;
}
