/**
 * A latent plan: everything a worker needs to produce shard i, on any engine, without talking to
 * any other worker (docs/latents.md, "Plan"). Written once by `dcae latents plan`; its `runId` is a
 * hash of the content, so two different plans never share output names or queue keys.
 */

export const PLAN_VERSION = 1;

export type LatentDType = 'fp32' | 'fp16';
export type LatentLayout = 'wds' | 'npy-tree';
export type PlanKind = 'encode' | 'decode';

/** One image of an image-folder shard. */
export interface PlanFile {
  /** Path relative to the input root, with `/` separators. */
  readonly path: string;
  /** The sample key (no dots, see sanitizeKey). */
  readonly key: string;
  /** Class index (sorted class folder names, as torchvision's ImageFolder numbers them). */
  readonly label?: number;
  readonly className?: string;
}

export type PlanShardSource =
  | { readonly kind: 'files'; readonly files: readonly PlanFile[] }
  /** A tar shard: WebDataset images (encode) or our latent shards (decode); output i = input i. */
  | { readonly kind: 'tar'; readonly path: string }
  /** An img2dataset parquet shard (images in a binary column); output i = input file i, in row order. */
  | { readonly kind: 'parquet'; readonly path: string; readonly rows: number };

export interface PlanShard {
  readonly index: number;
  /** `shard-000042`: the output is `<name>.tar` (wds) and the commit record `commits/<name>.json`. */
  readonly name: string;
  readonly source: PlanShardSource;
}

export interface LatentPlan {
  readonly version: typeof PLAN_VERSION;
  readonly kind: PlanKind;
  /** 16 hex characters of the sha256 of the plan without this field. */
  readonly runId: string;
  readonly model: { readonly source: string };
  readonly input: {
    readonly kind: 'image-folder' | 'webdataset' | 'img2dataset-parquet' | 'latent-shards';
    readonly root: string;
  };
  /** A folder path or `s3://bucket/prefix`. */
  readonly output: string;
  /** Square side fed to the encoder (encode plans). */
  readonly size: number;
  readonly dtype: LatentDType;
  readonly layout: LatentLayout;
  /** Multiply latents by the model's scaling factor before storing them (efficientvit and Sana do). */
  readonly scale: boolean;
  readonly preprocessing: string;
  readonly batchSize: number;
  readonly shards: readonly PlanShard[];
}

/** One bad input of a shard: recorded, never fatal. */
export interface SkippedSample {
  readonly key: string;
  readonly source: string;
  readonly code: string;
  readonly reason: string;
}

/** A file of an npy-tree shard. */
export interface CommittedFile {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * The one record per shard that says it is done: written first-writer-wins next to the data
 * (`commits/<shard>.json`); together they are the source of truth for `finalize`, `status` and
 * `verify`, never the queue.
 */
export interface CommitRecord {
  readonly version: 1;
  readonly runId: string;
  readonly shard: number;
  readonly name: string;
  /** The data file relative to the output root (wds), or the npy-tree listing's name. */
  readonly location: string;
  /** sha256 of the tar (wds), or of the sorted `path sha256` listing (npy-tree). */
  readonly sha256: string;
  readonly bytes: number;
  readonly nsamples: number;
  readonly keys: readonly string[];
  readonly skipped: readonly SkippedSample[];
  readonly files?: readonly CommittedFile[];
  readonly model: { readonly source: string; readonly name: string; readonly scalingFactor: number | null };
  readonly kind: PlanKind;
  readonly layout: LatentLayout;
  readonly dtype: LatentDType;
  readonly size: number;
  /** Whether the stored values were multiplied by `model.scalingFactor` (never without a factor). */
  readonly scaled: boolean;
  /** The latent file contract's `dcae.*` strings (docs/latent-format.md), encode plans. */
  readonly latentMetadata?: Readonly<Record<string, string>>;
  readonly preprocessing: string;
  /** Which attempt won (host, pid, random); others that ran lost the publish race. */
  readonly attemptId: string;
  readonly committedAt: string;
  /** Milliseconds the winning attempt spent on the shard. */
  readonly elapsedMs: number;
}
