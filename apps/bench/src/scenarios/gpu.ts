import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeDevice, NodeDeviceStatus } from '@dcae/runtime-adapters/node';
import { listNodeDevices } from '@dcae/runtime-adapters/node';
import type { ModelWorker, WorkerCase, WorkerOptions } from '../ae-worker.js';
import { compareWorkerCases, startWorker } from '../ae-worker.js';
import { messageOf } from '../chromium.js';
import type { BenchModel } from '../random-weights.js';
import { benchModel } from '../random-weights.js';
import type { Scenario, ScenarioOutcome, Series, Skipped } from '../scenario.js';

/**
 * DC-AE decode on onnxruntime-node's GPU execution providers against its CPU provider, in one run:
 * the bundled `webgpu` provider (Dawn on Vulkan: needs the Vulkan loader and the GPU's Vulkan
 * driver) and, where its libraries are installed, `cuda`. Only on a machine with an NVIDIA GPU
 * (found with `nvidia-smi`); elsewhere the cases are skipped with the reason. Each provider and
 * precision runs in its own child process (`ae-worker.ts`), so a provider that aborts the process
 * fails only its own cases.
 */

interface NvidiaGpu {
  readonly name: string;
  readonly driver: string;
  readonly memory: string;
}

/** The NVIDIA GPUs `nvidia-smi` lists, or why there are none. */
function nvidiaGpus(): NvidiaGpu[] | { reason: string } {
  let out: string;
  try {
    out = execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      },
    );
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      reason: missing
        ? 'no NVIDIA GPU: nvidia-smi is not installed'
        : `no NVIDIA GPU: nvidia-smi failed (${messageOf(error).split('\n')[0]})`,
    };
  }
  const gpus = out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name = '', driver = '', memory = ''] = line.split(',').map((x) => x.trim());
      return { name, driver, memory };
    });
  return gpus.length > 0 ? gpus : { reason: 'no NVIDIA GPU: nvidia-smi lists none' };
}

/** Vulkan driver manifests (ICDs) in the standard folders. */
function vulkanIcds(): string[] {
  return ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'].flatMap((folder) => {
    try {
      return readdirSync(folder)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(folder, f));
    } catch {
      return [];
    }
  });
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const SWIFTSHADER_LIBRARY = '/usr/lib/chromium/libvk_swiftshader.so';
const SWIFTSHADER_LABEL = 'SwiftShader (CPU emulation) — not a GPU timing';

/**
 * Chromium's SwiftShader Vulkan driver as an ICD manifest with an absolute library path (the
 * packaged one names the library relative to Chromium), written into `cacheDir`.
 */
async function swiftShaderIcd(cacheDir: string): Promise<string | { reason: string }> {
  if (!existsSync(SWIFTSHADER_ICD) || !existsSync(SWIFTSHADER_LIBRARY))
    return { reason: `Chromium's SwiftShader Vulkan driver is not installed (${SWIFTSHADER_ICD})` };
  const manifest = (await readFile(SWIFTSHADER_ICD, 'utf8')).replace(
    /"library_path":\s*"[^"]*"/,
    `"library_path": "${SWIFTSHADER_LIBRARY}"`,
  );
  const file = join(cacheDir, 'swiftshader_icd.json');
  await mkdir(cacheDir, { recursive: true });
  await writeFile(file, manifest);
  return file;
}

interface Provider {
  readonly device: NodeDevice;
  /** Series label prefix, e.g. `NVIDIA H100 webgpu` or `cpu`. */
  readonly label: string;
  readonly options: WorkerOptions;
}

interface DecodeCase {
  readonly size: number;
  readonly dtype: 'fp32' | 'fp16';
}

const caseName = (provider: Provider, c: DecodeCase): string =>
  `${provider.label} decode ${c.size}² ${c.dtype}`;

/**
 * Runs every case on every provider (one worker per provider and precision) side by side; a
 * provider whose worker fails to start or to set its session up is skipped with the reason.
 */
async function measureProviders(
  context: Parameters<Scenario['run']>[0],
  model: BenchModel,
  providers: readonly Provider[],
  cases: readonly DecodeCase[],
): Promise<{ series: Series[]; skipped: Skipped[]; ratios: { of: string; to: string }[] }> {
  const workers: ModelWorker[] = [];
  const workerCases: WorkerCase[] = [];
  const skipped: Skipped[] = [];
  try {
    for (const provider of providers) {
      for (const dtype of ['fp32', 'fp16'] as const) {
        const mine = cases.filter((c) => c.dtype === dtype);
        if (mine.length === 0) continue;
        context.log(`${provider.label} ${dtype}: loading ${model.label} in a child process`);
        let worker: ModelWorker;
        try {
          worker = await startWorker(
            context.cacheDir,
            { folder: model.folder, config: model.config, parts: ['decoder'], dtype },
            provider.options,
          );
          // The session is set up here (a 1-cell decode), so a provider that cannot run this model fails now.
          await worker.run({ operation: 'decode', shape: [1, model.latentChannels, 1, 1] });
        } catch (error) {
          const reason = messageOf(error).split('\n').slice(0, 3).join(' ').slice(0, 400);
          for (const c of mine) skipped.push({ name: caseName(provider, c), reason });
          continue;
        }
        workers.push(worker);
        for (const c of mine) {
          const side = c.size / model.f;
          workerCases.push({
            name: caseName(provider, c),
            worker,
            run: { operation: 'decode', shape: [1, model.latentChannels, side, side] },
            work: { amount: (2 * model.macs(c.size, c.size).decoder) / 1e9, unit: 'GFLOP' },
            images: 1,
          });
        }
      }
    }
    const { cases: measured } = await compareWorkerCases(workerCases, context.sampling);
    const names = new Set(measured.map((m) => m.case.name));
    const cpu = providers.find((p) => p.device === 'cpu');
    const ratios = providers
      .filter((p) => p !== cpu && cpu !== undefined)
      .flatMap((p) => cases.map((c) => ({ of: caseName(p, c), to: caseName(cpu!, c) })))
      .filter((r) => names.has(r.of) && names.has(r.to));
    return { series: measured.map((m) => m.series), skipped, ratios };
  } finally {
    for (const worker of workers) await worker.close();
  }
}

export const gpu: Scenario = {
  name: 'gpu',
  title: 'DC-AE decode on onnxruntime-node GPU providers (webgpu/Vulkan, cuda) vs cpu, NVIDIA GPUs only',
  description:
    'Where `nvidia-smi` finds an NVIDIA GPU: decodes with dc-ae-f32c32-in-1.0 at its real widths (random weights) ' +
    "at 512² and 1024², fp32 and fp16, on onnxruntime-node's bundled `webgpu` execution provider (Dawn on Vulkan: " +
    'needs libvulkan.so.1 and the NVIDIA Vulkan driver), on `cuda` where its provider libraries are installed ' +
    '(`listNodeDevices()`), and on `cpu`, each provider and precision in its own child process, cases side by ' +
    'side in rounds; times are absolute and labelled with the GPU model, ratios are provider ÷ cpu. Without an ' +
    'NVIDIA GPU every case is skipped with the reason. In --quick on such a machine, the webgpu code path is ' +
    "proved instead on Chromium's SwiftShader Vulkan driver (CPU emulation; its times are not GPU timings) with " +
    'a 1/16-width model at 32², in a child process.',
  async run(context): Promise<ScenarioOutcome> {
    const gpus = nvidiaGpus();
    const statuses = listNodeDevices();
    const status = (device: NodeDevice): NodeDeviceStatus => statuses.find((s) => s.device === device)!;
    const icds = vulkanIcds();
    const params: Record<string, string> = {
      nvidia: Array.isArray(gpus)
        ? gpus.map((g) => `${g.name} (driver ${g.driver}, ${g.memory})`).join('; ')
        : gpus.reason,
      vulkanIcds: icds.length > 0 ? icds.join(', ') : 'none',
      webgpu: status('webgpu').reason,
      cuda: status('cuda').reason,
    };
    const notes = [
      'Each worker first sets its decoder session up on a 1-cell latent (graph build, session creation, shader ' +
        'or kernel compilation), outside the timings; then every case runs once (warm-up) before the rounds.',
    ];

    if (Array.isArray(gpus)) {
      const gpuName = gpus[0]!.name;
      const providers: Provider[] = [];
      const skipped: Skipped[] = [];
      const sizes = context.quick ? [64, 128] : [512, 1024];
      const cases: DecodeCase[] = sizes.flatMap((size) => [
        { size, dtype: 'fp32' as const },
        { size, dtype: 'fp16' as const },
      ]);
      for (const device of ['cuda', 'webgpu'] as const) {
        const s = status(device);
        const usable = s.available && (device === 'cuda' || s.auto);
        if (usable)
          providers.push({
            device,
            label: `${gpuName} ${device}`,
            options: { runtime: { devices: [device] } },
          });
        else
          for (const c of cases)
            skipped.push({
              name: caseName({ device, label: `${gpuName} ${device}`, options: {} }, c),
              reason: s.reason,
            });
      }
      providers.push({ device: 'cpu', label: 'cpu', options: {} });
      const model = await benchModel(context.cacheDir, 'f32c32-in', {
        tiny: context.quick,
        log: (m) => context.log(m),
      });
      const measured = await measureProviders(context, model, providers, cases);
      if (gpus.length > 1) notes.push(`${gpus.length} GPUs found; onnxruntime uses the first (device 0).`);
      return {
        params: { ...params, gpu: gpuName, model: model.label, sizes: sizes.join(', ') },
        series: measured.series,
        ratios: measured.ratios,
        skipped: [...skipped, ...measured.skipped],
        notes: [
          ...notes,
          `Times are absolute, on ${gpuName}; GFLOP/s counts the decoder's convolutions and attention matmuls (countMacs).`,
        ],
      };
    }

    const none: Skipped[] = [512, 1024].flatMap((size) =>
      (['fp32', 'fp16'] as const).flatMap((dtype) =>
        (['webgpu', 'cuda'] as const).map((device) => ({
          name: `${device} decode ${size}² ${dtype}`,
          reason: gpus.reason,
        })),
      ),
    );
    if (!context.quick) return { params, series: [], skipped: none, notes };

    // --quick without an NVIDIA GPU: prove the webgpu path on SwiftShader.
    const icd = await swiftShaderIcd(context.cacheDir);
    if (typeof icd !== 'string') {
      return {
        params,
        series: [],
        skipped: [...none, { name: `${SWIFTSHADER_LABEL}: webgpu decode 32²`, reason: icd.reason }],
        notes,
      };
    }
    const model = await benchModel(context.cacheDir, 'f32c32-in', { tiny: true, log: (m) => context.log(m) });
    const providers: Provider[] = [
      {
        device: 'webgpu',
        label: `${SWIFTSHADER_LABEL}: webgpu`,
        options: { runtime: { devices: ['webgpu'] }, env: { VK_ICD_FILENAMES: icd } },
      },
      { device: 'cpu', label: 'cpu', options: {} },
    ];
    const measured = await measureProviders(context, model, providers, [{ size: 32, dtype: 'fp32' }]);
    return {
      params: { ...params, swiftShaderIcd: icd, model: model.label },
      series: measured.series,
      ratios: measured.ratios,
      skipped: [...none, ...measured.skipped],
      notes: [
        ...notes,
        `No NVIDIA GPU here, so --quick ran the webgpu provider on Chromium's SwiftShader Vulkan driver (VK_ICD_FILENAMES=${icd}): ` +
          'Vulkan emulated on the CPU, about 100× slower than the cpu provider. It proves that the code path works; ' +
          'its times are not GPU timings.',
      ],
    };
  },
};
