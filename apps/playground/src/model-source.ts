/**
 * ModelFiles for the browser: a model folder at a URL (a bundled fixture, a Hugging Face repo, any
 * server) or picked from the local disk. Weight files are Blobs — from the weights cache, a
 * download, or the picked File — read tensor by tensor (`blobSource`) and handed to
 * onnxruntime-web as blob: URLs, so no whole-file ArrayBuffer is made in JavaScript.
 */
import type { ModelFiles } from '@dcae/autoencoder';
import { blobSource, DcaeError } from '@dcae/core';
import { hubStatusError } from '@dcae/hub';
import type { WeightsCache } from '@dcae/runtime-adapters/web';

export const WEIGHTS_FILES = ['diffusion_pytorch_model.safetensors', 'model.safetensors'] as const;

export interface BrowserModelFiles extends ModelFiles {
  /** Revokes the blob: URLs handed out. */
  release(): void;
}

export interface FetchOptions {
  readonly cache: WeightsCache | undefined;
  readonly signal: AbortSignal;
  readonly onProgress: (file: string, loaded: number, total: number | undefined, fromCache: boolean) => void;
}

/**
 * The default model: `@dcae/model-tiny`, a small f32c32 DC-AE trained by dcae itself, which the
 * page's own origin serves from the package (build/assets.ts). Its numbers are in its model card.
 */
export const DEFAULT_MODEL_NAME = '@dcae/model-tiny';
/** Its folder, relative to the page's base URL. */
export const DEFAULT_MODEL_PATH = 'models/model-tiny/';
/** Its model card (README.md), the source of every number the page quotes about it. */
export const DEFAULT_MODEL_CARD = `${DEFAULT_MODEL_PATH}README.md`;
/** Held-out photos shipped with it (never trained on), offered as inputs. */
export const DEFAULT_MODEL_PHOTOS: readonly {
  readonly id: string;
  readonly label: string;
  readonly path: string;
}[] = [
  {
    id: 'photo-coffee',
    label: 'Coffee (held-out photo, CC0)',
    path: `${DEFAULT_MODEL_PATH}photos/coffee.jpg`,
  },
  {
    id: 'photo-chelsea',
    label: 'Chelsea (held-out photo, CC0)',
    path: `${DEFAULT_MODEL_PATH}photos/chelsea.jpg`,
  },
];

/** Hugging Face repo ids of the released DC-AE checkpoints in diffusers format (docs/model-spec.md §1.1). */
export const HUB_PRESETS: readonly { readonly repo: string; readonly note: string }[] = [
  { repo: 'mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers', note: 'f32c32, SANA 1.1, 1.25 GB' },
  { repo: 'mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers', note: 'f32c32, SANA 1.0, 1.25 GB' },
  { repo: 'mit-han-lab/dc-ae-f32c32-in-1.0-diffusers', note: 'f32c32, ImageNet' },
  { repo: 'mit-han-lab/dc-ae-f32c32-mix-1.0-diffusers', note: 'f32c32, mixed data' },
  { repo: 'mit-han-lab/dc-ae-f64c128-in-1.0-diffusers', note: 'f64c128, ImageNet' },
  { repo: 'mit-han-lab/dc-ae-f64c128-mix-1.0-diffusers', note: 'f64c128, mixed data' },
];

const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * A model folder URL from a repo id (`org/name`), a Hub repo page URL or any http(s) folder URL.
 * Anything else is refused with INVALID_ARGUMENT (a relative text would fetch the page's own
 * index.html). A folder URL works with or without its trailing slash.
 */
export function modelFolderUrl(input: string): string {
  const text = input.trim();
  if (REPO_ID.test(text)) return `https://huggingface.co/${text}/resolve/main/`;
  let url: URL | undefined;
  try {
    url = /^https?:\/\//i.test(text) ? new URL(text) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined)
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${JSON.stringify(text.slice(0, 200))} is neither a Hugging Face repo id (org/name) nor an http(s) URL of a model folder. ` +
        'Enter e.g. mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers or https://example.com/models/my-dcae/.',
      { source: text.slice(0, 200) },
    );
  const hubPage = /^\/([\w.-]+\/[\w.-]+)\/?$/.exec(url.pathname);
  if (url.hostname === 'huggingface.co' && hubPage)
    return `https://huggingface.co/${hubPage[1]}/resolve/main/`;
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

/**
 * `fetch` whose connection failures are NETWORK errors naming the URL, with advice, as the CLI's
 * downloads report them (the browser's own `TypeError: Failed to fetch` names neither). A
 * cancelled request rethrows as it is.
 */
export async function fetchOrFail(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (cause) {
    if (init.signal?.aborted) throw cause;
    throw networkError(url, init.method ?? 'GET', cause);
  }
}

/** The NETWORK error for a request that got no answer. */
export function networkError(url: string, method: string, cause: unknown): DcaeError {
  const source = url.replace(/[?#].*$/, '');
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new DcaeError(
    'NETWORK',
    `${source}: ${method} failed (${reason}); check the connection and retry. ` +
      'The browser does not say why a request failed: you may be offline, the host may be down or unknown, ' +
      'or the server may not allow requests from other sites (CORS).',
    { source, cause },
  );
}

/** The model folder at `folderUrl`: its config.json and the first of `weightsFiles` that exists. */
export async function urlModelFiles(
  folderUrl: string,
  options: FetchOptions,
  name = folderUrl,
  weightsFiles: readonly string[] = WEIGHTS_FILES,
): Promise<BrowserModelFiles> {
  const { signal } = options;
  const texts = new Map<string, string>();
  const config = await fetchOrFail(new URL('config.json', folderUrl).href, { signal });
  if (config.ok) texts.set('config.json', await config.text());
  else if (config.status !== 404) throw httpError(new URL('config.json', folderUrl).href, config);

  let weights: string | undefined;
  for (const file of weightsFiles) {
    const head = await fetchOrFail(new URL(file, folderUrl).href, { method: 'HEAD', signal });
    if (head.ok) {
      weights = file;
      break;
    }
    if (head.status !== 404) throw httpError(new URL(file, folderUrl).href, head);
  }
  if (weights === undefined) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${folderUrl} has no ${weightsFiles.join(' or ')} (HTTP 404). Give the URL of a model folder.`,
      { source: folderUrl },
    );
  }
  const blob = await fetchBlob(new URL(weights, folderUrl).href, weights, options);
  return blobModelFiles(name, texts, new Map([[weights, blob]]));
}

/** The top-level files of a picked or dropped folder (or a few picked files). */
export function localModelFiles(name: string, files: readonly File[]): BrowserModelFiles {
  const texts = new Map<string, string>();
  const blobs = new Map<string, Blob>();
  for (const file of files) {
    // webkitRelativePath is "folder/file" for a picked folder; deeper files are not the model's.
    const depth = file.webkitRelativePath ? file.webkitRelativePath.split('/').length - 1 : 1;
    if (depth === 1) blobs.set(file.name, file);
  }
  return blobModelFiles(name, texts, blobs);
}

/** Downloads through the weights cache when there is one (revalidated by ETag), else directly. */
export async function fetchBlob(url: string, file: string, options: FetchOptions): Promise<Blob> {
  const { cache, signal, onProgress } = options;
  if (cache !== undefined) {
    const cached = await cache.get(url, {
      signal,
      onProgress: (loaded, total) => onProgress(file, loaded, total, false),
    });
    if (cached.source === 'cache') onProgress(file, cached.blob.size, cached.blob.size, true);
    return cached.blob;
  }
  const response = await fetchOrFail(url, { signal });
  if (!response.ok) throw httpError(url, response);
  const blob = await response.blob();
  onProgress(file, blob.size, blob.size, false);
  return blob;
}

function blobModelFiles(
  name: string,
  texts: Map<string, string>,
  blobs: Map<string, Blob>,
): BrowserModelFiles {
  const urls = new Map<string, string>();
  const blob = (file: string): Blob => {
    const found = blobs.get(file);
    if (found === undefined)
      throw new DcaeError('FILE_NOT_FOUND', `${name}: no file ${file}.`, { source: `${name}/${file}` });
    return found;
  };
  return {
    name,
    list: async () => [...new Set([...texts.keys(), ...blobs.keys()])],
    readText: async (file) => texts.get(file) ?? (await blob(file).text()),
    byteSource: async (file) => blobSource(blob(file), `${name}/${file}`),
    externalDataLocation: (file) => {
      let url = urls.get(file);
      if (url === undefined) urls.set(file, (url = URL.createObjectURL(blob(file))));
      return url;
    },
    release: () => {
      for (const url of urls.values()) URL.revokeObjectURL(url);
      urls.clear();
    },
  };
}

/**
 * An HTTP status the load cannot continue after. Hub answers get the CLI's message (the Hub's
 * error code and what to do, `hubStatusError` of @dcae/hub); other servers a plain one.
 */
function httpError(url: string, response: Response): DcaeError {
  const source = url.replace(/[?#].*$/, '');
  const hub = /^https:\/\/huggingface\.co\/([\w.-]+\/[\w.-]+)\/resolve\//.exec(source);
  if (hub !== null && response.status !== 404)
    return hubStatusError(response.status, response.headers, { source, repo: hub[1], withToken: false });
  return new DcaeError(
    response.status === 404 ? 'FILE_NOT_FOUND' : 'HTTP_STATUS',
    `${source}: HTTP ${response.status} ${response.statusText}.`,
    { source: url, detail: { status: response.status } },
  );
}
