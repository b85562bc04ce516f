import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { DcaeError } from '@dcae/core';
import { writeFileAtomic } from '@dcae/core/node';
import { sanitizeKey, shardName } from '../keys.js';
import { PLAN_VERSION } from '../plan-types.js';
import type { LatentDType, LatentLayout, LatentPlan, PlanFile, PlanKind, PlanShard } from '../plan-types.js';
import { PREPROCESSING_VERSION } from '../preprocess.js';
import { hasImageColumn, inspectImageParquet } from './parquet.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

export interface MakePlanOptions {
  readonly kind?: PlanKind;
  readonly model: string;
  /**
   * An image folder, a WebDataset folder (`*.tar`, as img2dataset writes), a single `.tar`, or
   * img2dataset `--output_format parquet` shards (a folder of `*.parquet` with an image column, or one file).
   */
  readonly input: string;
  readonly output: string;
  readonly size?: number;
  /** Samples per output shard for image folders (WebDataset inputs keep their shards). @defaultValue 1000 */
  readonly shardSize?: number;
  readonly dtype?: LatentDType;
  readonly layout?: LatentLayout;
  readonly scale?: boolean;
  readonly batchSize?: number;
}

async function walk(root: string, dir = root, out: string[] = []): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) await walk(root, full, out);
    else if (entry.isFile()) out.push(relative(root, full).split(sep).join('/'));
  }
  return out;
}

/**
 * The parquet files of a folder that are img2dataset image shards. Files without an image column
 * are metadata side files (img2dataset's webdataset and files formats write them): when no file
 * has an image column they are all ignored (returns []). A file that is not readable parquet
 * counts as an image shard unless every readable one is a side file, so that makePlan inspects it
 * again and reports its typed error instead of skipping it.
 */
async function parquetsWithImages(root: string, parquets: readonly string[]): Promise<string[]> {
  const found = await Promise.all(parquets.map((p) => hasImageColumn(join(root, p))));
  if (!found.includes(true) && found.includes(false)) return [];
  return parquets.filter((_, i) => found[i] !== false);
}

const isImage = (p: string): boolean => IMAGE_EXTENSIONS.some((e) => p.toLowerCase().endsWith(e));

/**
 * A deterministic plan: the same input listing and options always give the same plan and runId
 * (sorted listings; no clocks, hosts or random numbers in it).
 */
export async function makePlan(options: MakePlanOptions): Promise<LatentPlan> {
  const kind = options.kind ?? 'encode';
  const root = resolve(options.input);
  const info = await stat(root).catch((cause: unknown) => {
    throw new DcaeError('FILE_NOT_FOUND', `Input ${options.input} does not exist.`, {
      source: options.input,
      cause,
    });
  });
  const shardSize = options.shardSize ?? 1000;
  if (!Number.isInteger(shardSize) || shardSize < 1) {
    throw new DcaeError('INVALID_ARGUMENT', `--shard-size must be a positive integer, got ${shardSize}.`);
  }
  const size = options.size ?? 512;
  if (kind === 'encode' && (!Number.isInteger(size) || size < 1 || size > 8192)) {
    throw new DcaeError('INVALID_ARGUMENT', `--size must be an integer in 1..8192, got ${size}.`);
  }
  const layout = options.layout ?? 'wds';
  let inputKind: LatentPlan['input']['kind'];
  let inputRoot = root;
  let shards: PlanShard[];
  const tarShards = (tars: string[]): PlanShard[] =>
    tars.map((path, index) => ({ index, name: shardName(index), source: { kind: 'tar', path } }));
  const parquetShards = async (paths: string[]): Promise<PlanShard[]> => {
    const out: PlanShard[] = [];
    for (const [index, path] of paths.entries()) {
      const info = await inspectImageParquet(join(inputRoot, path));
      out.push({ index, name: shardName(index), source: { kind: 'parquet', path, rows: info.rows } });
    }
    return out;
  };

  if (info.isFile() && root.endsWith('.parquet') && kind === 'encode') {
    inputRoot = join(root, '..');
    inputKind = 'img2dataset-parquet';
    shards = await parquetShards([relative(inputRoot, root)]);
  } else if (info.isFile()) {
    if (!root.endsWith('.tar')) {
      throw new DcaeError(
        'UNSUPPORTED_FORMAT',
        `Input ${options.input} is a file but not a .tar shard${kind === 'encode' ? ' or a .parquet shard' : ''}; give a folder or a .tar.`,
        {
          source: options.input,
        },
      );
    }
    inputRoot = join(root, '..');
    inputKind = kind === 'encode' ? 'webdataset' : 'latent-shards';
    shards = tarShards([relative(inputRoot, root)]);
  } else {
    const files = await walk(root);
    const tars = files.filter((f) => f.endsWith('.tar'));
    const parquets = files.filter((f) => f.endsWith('.parquet'));
    // img2dataset --output_format parquet: images inside the parquet files. Its webdataset and
    // files formats also write NNNNN.parquet, but metadata only (no image column): those folders
    // are read as tars or images, and their parquet side files are ignored.
    const imageParquets =
      kind === 'encode' && tars.length === 0 && parquets.length > 0
        ? await parquetsWithImages(root, parquets)
        : [];
    if (imageParquets.length > 0) {
      if (imageParquets.length !== parquets.length) {
        const odd = parquets.filter((p) => !imageParquets.includes(p)); // metadata-only side files
        throw new DcaeError(
          'UNSUPPORTED_FORMAT',
          `${options.input} mixes image parquet files with ${odd.length} without an image column (${odd.slice(0, 3).join(', ')}${odd.length > 3 ? ', …' : ''}); give one img2dataset --output_format parquet output folder.`,
          { source: options.input, detail: { withoutImages: odd } },
        );
      }
      inputKind = 'img2dataset-parquet';
      shards = await parquetShards(imageParquets);
    } else if (kind === 'decode' || tars.length > 0) {
      if (tars.length === 0) {
        throw new DcaeError('FILE_NOT_FOUND', `No .tar latent shards in ${options.input}.`, {
          source: options.input,
        });
      }
      inputKind = kind === 'encode' ? 'webdataset' : 'latent-shards';
      shards = tarShards(tars);
    } else {
      const images = files.filter(isImage);
      if (images.length === 0) {
        throw new DcaeError(
          'FILE_NOT_FOUND',
          `No images (${IMAGE_EXTENSIONS.join(', ')}), no .tar shards and no image parquet files in ${options.input}.`,
          {
            source: options.input,
          },
        );
      }
      // ImageNet-style class folders: every image sits exactly one folder deep.
      const classFolders = images.every((p) => p.split('/').length === 2);
      const classes = classFolders ? [...new Set(images.map((p) => p.split('/')[0]!))].sort() : [];
      const labelOf = new Map(classes.map((c, i) => [c, i]));
      const planFiles: PlanFile[] = images.map((path) => {
        const stem = path.replace(/\.[^./]+$/, '');
        const className = classFolders ? path.split('/')[0]! : undefined;
        return {
          path,
          key: sanitizeKey(stem),
          ...(className !== undefined ? { label: labelOf.get(className)!, className } : {}),
        };
      });
      inputKind = 'image-folder';
      shards = [];
      for (let i = 0; i * shardSize < planFiles.length; i++) {
        shards.push({
          index: i,
          name: shardName(i),
          source: { kind: 'files', files: planFiles.slice(i * shardSize, (i + 1) * shardSize) },
        });
      }
    }
  }
  if (layout === 'npy-tree' && kind === 'decode') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      '--layout npy-tree is for encode plans; decode-shards writes image tars.',
    );
  }
  const body = {
    version: PLAN_VERSION,
    kind,
    model: { source: options.model },
    input: { kind: inputKind, root: inputRoot },
    output: options.output.startsWith('s3://') ? options.output.replace(/\/+$/, '') : resolve(options.output),
    size: kind === 'encode' ? size : 0,
    dtype: options.dtype ?? 'fp32',
    layout,
    scale: options.scale ?? true,
    preprocessing: kind === 'encode' ? PREPROCESSING_VERSION : 'none',
    batchSize: options.batchSize ?? 8,
    shards,
  } as const;
  const runId = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  const plan: LatentPlan = { ...body, runId };
  return plan;
}

export async function writePlan(path: string, plan: LatentPlan): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  await writeFileAtomic(path, new TextEncoder().encode(`${JSON.stringify(plan)}\n`), { overwrite: true });
}

/** Reads and checks a plan file (version, runId matches the content, shards numbered 0..n-1). */
export async function readPlan(path: string): Promise<LatentPlan> {
  const text = await readFile(path, 'utf8').catch((cause: unknown) => {
    throw new DcaeError(
      'FILE_NOT_FOUND',
      `Plan ${path} cannot be read; create it with \`dcae latents plan\`.`,
      { source: path, cause },
    );
  });
  let plan: LatentPlan;
  try {
    plan = JSON.parse(text) as LatentPlan;
  } catch (cause) {
    throw new DcaeError('CONFIG_NOT_JSON', `Plan ${path} is not JSON.`, { source: path, cause });
  }
  if (plan?.version !== PLAN_VERSION || !Array.isArray(plan.shards) || typeof plan.runId !== 'string') {
    throw new DcaeError('CONFIG_VALUE', `Plan ${path} is not a version ${PLAN_VERSION} latent plan.`, {
      source: path,
    });
  }
  const { runId, ...body } = plan;
  const expected = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  if (expected !== runId) {
    throw new DcaeError(
      'CONFIG_VALUE',
      `Plan ${path} was edited: its runId ${runId} does not match its content (${expected}). Re-plan instead of editing.`,
      {
        source: path,
      },
    );
  }
  plan.shards.forEach((s: PlanShard, i) => {
    if (s.index !== i || s.name !== shardName(i)) {
      throw new DcaeError('CONFIG_VALUE', `Plan ${path}: shard ${i} is numbered ${s.index} (${s.name}).`, {
        source: path,
      });
    }
  });
  return plan;
}
