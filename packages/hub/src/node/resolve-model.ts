import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { DcaeError, openSafetensors, parseJsonConfig } from '@dcae/core';
import { checkHubRepo, checkHubRevision, formatHubRepoRef, isHubRepoId } from '../repo-id.js';
import { checkRepoFilename } from '../filename.js';
import { DEFAULT_HUB_ENDPOINT, displayUrl, parseHubUrl } from '../url.js';
import type { JsonValue } from '@dcae/core';
import { fileSource } from '@dcae/core/node';
import { downloadUrlFile } from './hub-url-cache.js';
import type { UrlCacheOptions } from './hub-url-cache.js';
import { hubDownload, hubSettings } from './hub-download.js';
import type { HubOptions } from './hub-download.js';
import { CONFIG_FILE, WEIGHTS_FILE } from '../model-files.js';
import type { KnownModel, ModelCatalog, ModelLayout } from '../catalog.js';
import { AUTOENCODER_CATALOG, COMBINED_AUTOENCODER_PREFIX, TAESANA_RELEASE } from '../catalog.js';

/** Where a model comes from, as read from a `--model` argument. */
export type ModelSource =
  | { readonly kind: 'folder'; readonly path: string }
  | {
      readonly kind: 'hub';
      readonly repo: string;
      readonly revision: string | undefined;
      /** A folder inside the repo (`org/name/vae`), or undefined for the repo root. */
      readonly subfolder: string | undefined;
    }
  | {
      readonly kind: 'url';
      /** The URL of the model folder, ending in `/`. */
      readonly folderUrl: string;
      /** The file the URL named, if it named one. */
      readonly file: string | undefined;
    };

/** Where Hub and URL downloads go and how they are made (all fields default from the environment). */
export interface ResolveModelOptions extends HubOptions, Pick<UrlCacheOptions, 'urlCacheDir'> {
  /**
   * The weights file to fetch next to config.json, when the caller knows it: `model.safetensors`
   * for a diffusion checkpoint, whose config.json may give its backbone without a `model_name`.
   * @defaultValue the file the config's layout implies
   */
  readonly weightsFile?: string;
  /**
   * The released repos to recognise (`known`, the combined layout of a released diffusion
   * checkpoint): pass `MODEL_CATALOG` of `@dcae/diffusion` to know the diffusion models too.
   * @defaultValue `AUTOENCODER_CATALOG` (the released autoencoders)
   */
  readonly catalog?: ModelCatalog;
}

/** A model source turned into a local folder. */
export interface ResolvedModel {
  readonly source: ModelSource;
  /** For messages and as the model's name: `org/name@revision`, the URL, or the path as given. */
  readonly name: string;
  /** A local folder holding config.json and the weights (for Hub models: the snapshot folder). */
  readonly directory: string;
  /** Found from config.json (and, for an unknown `model_name`, the weights' keys); undefined without config.json. */
  readonly layout: ModelLayout | undefined;
  /** The weights file of that layout. */
  readonly weightsFile: string | undefined;
  /** The `model_name` of an original or combined config.json. */
  readonly modelName: string | undefined;
  /** The commit a Hub revision resolved to. */
  readonly commit: string | undefined;
  /** The registry entry of a released model. */
  readonly known: KnownModel | undefined;
}

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** The files a model URL may name directly (anything else names a folder). */
const MODEL_FILE_NAME = /\/[^/]+\.(?:json|safetensors|pth)$/i;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Reads a model argument: an `http(s)://` URL (a Hub page or `resolve/` URL becomes a Hub source;
 * plain `http:` only for loopback hosts), a path (`/…`, `./…`, `../…`, `~/…`, `C:\…`), a Hub id
 * `org/name[/subfolder][@revision]`, or else a folder path. Throws INVALID_ARGUMENT or
 * UNSAFE_PATH for a malformed URL, id or subfolder. Whether a local folder of the same name
 * exists is decided later, by {@link resolveModel}.
 */
export function parseModelSource(text: string, options: { endpoint?: string } = {}): ModelSource {
  if (URL_SCHEME.test(text)) return parseUrlSource(text, options.endpoint ?? DEFAULT_HUB_ENDPOINT);
  const looksLikePath = /^(?:[/.~\\]|[A-Za-z]:)/.test(text) || text.includes('\\');
  if (looksLikePath || !text.includes('/')) return { kind: 'folder', path: text };
  const at = text.indexOf('@');
  const [org, name, ...rest] = (at < 0 ? text : text.slice(0, at)).split('/');
  const repo = `${org}/${name}`;
  if (!isHubRepoId(repo)) return { kind: 'folder', path: text };
  const revision = at < 0 ? undefined : checkHubRevision(text.slice(at + 1), repo);
  const subfolder = rest.length === 0 ? undefined : checkRepoFilename(rest.join('/'), repo);
  return { kind: 'hub', repo, revision, subfolder };
}

function parseUrlSource(text: string, endpoint: string): ModelSource {
  const hub = parseHubUrl(text, endpoint) ?? parseHubUrl(text, DEFAULT_HUB_ENDPOINT);
  if (hub !== undefined) {
    const { path } = hub;
    const folder = path !== undefined && /\.(json|safetensors|pth)$/.test(path) ? posix.dirname(path) : path;
    return {
      kind: 'hub',
      repo: hub.repo,
      revision: hub.revision,
      subfolder: folder === '.' ? undefined : folder,
    };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new DcaeError('INVALID_ARGUMENT', `${displayUrl(text)} is not a valid URL.`, {
      source: displayUrl(text),
      cause,
    });
  }
  const problem =
    url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))
      ? `only https: URLs are downloaded (plain http: only from this machine), not ${url.protocol}//${url.host}`
      : url.username !== '' || url.password !== ''
        ? 'it holds credentials'
        : url.search !== '' || url.hash !== ''
          ? 'it has a query string or fragment, so the other files of the folder cannot be found next to it'
          : undefined;
  if (problem !== undefined) {
    throw new DcaeError('INVALID_ARGUMENT', `model URL ${displayUrl(text)} is refused: ${problem}.`, {
      source: displayUrl(text),
    });
  }
  if (url.pathname.endsWith('/')) return { kind: 'url', folderUrl: url.href, file: undefined };
  // A last segment that is not a model file (config.json, *.safetensors) names the folder itself:
  // `https://host/models/tiny` is the folder `https://host/models/tiny/`.
  if (!MODEL_FILE_NAME.test(url.pathname)) {
    const folder = new URL(url.href);
    folder.pathname = `${url.pathname}/`;
    return { kind: 'url', folderUrl: folder.href, file: undefined };
  }
  const slash = url.pathname.lastIndexOf('/');
  let file: string;
  try {
    file = decodeURIComponent(url.pathname.slice(slash + 1));
  } catch (cause) {
    throw new DcaeError('INVALID_ARGUMENT', `model URL ${displayUrl(text)} has a malformed %-escape.`, {
      source: displayUrl(text),
      cause,
    });
  }
  const folder = new URL(url.href);
  folder.pathname = url.pathname.slice(0, slash + 1);
  return { kind: 'url', folderUrl: folder.href, file: checkRepoFilename(file, displayUrl(text)) };
}

/**
 * Turns a model argument into a local folder (see {@link parseModelSource}): a local folder is
 * used in place; a Hub repo (with optional revision and subfolder) is fetched into the
 * huggingface_hub cache; a URL folder into the dcae URL cache. For downloads, config.json comes
 * first and decides which weights file follows: `diffusion_pytorch_model.safetensors` for a
 * diffusers config, `model.safetensors` for `{"model_name": …}` (original or combined). A
 * `org/name` that is also an existing relative folder is that folder.
 *
 * Errors: MODEL_NOT_FOUND (no such folder; a repo without config.json or the weights), and
 * those of `hubDownload` / `downloadUrlFile` (HTTP_STATUS, NETWORK, OFFLINE, INTEGRITY, …).
 */
export async function resolveModel(model: string, options: ResolveModelOptions = {}): Promise<ResolvedModel> {
  let source = parseModelSource(model, { endpoint: options.endpoint ?? hubSettings(options).endpoint });
  if (source.kind === 'hub' && !URL_SCHEME.test(model)) {
    if (await isDirectory(model)) source = { kind: 'folder', path: model };
    else return resolveAmbiguous(source, model, options);
  }
  switch (source.kind) {
    case 'folder':
      return resolveFolder(source, model, options.catalog ?? AUTOENCODER_CATALOG);
    case 'hub':
      return resolveHub(source, options);
    case 'url':
      return resolveUrl(source, options);
  }
}

/**
 * `a/b` with no local folder of that name: maybe a Hub id, maybe a mistyped path. The Hub is asked
 * once for config.json, without retries (a cached copy still serves when the network is down);
 * a failure says both things at once: no such folder, and what the Hub answered.
 */
async function resolveAmbiguous(
  source: ModelSource & { kind: 'hub' },
  model: string,
  options: ResolveModelOptions,
): Promise<ResolvedModel> {
  try {
    return await resolveHub(source, options, { configAttempts: 1 });
  } catch (error) {
    if (!DcaeError.is(error) || error.code === 'ABORTED') throw error;
    const what = `No local folder ${model}; as a Hub id: ${error.what}`;
    throw new DcaeError(error.code, what, {
      source: model,
      cause: error,
      detail: { ...error.detail, localFolder: false },
      cliMessage: `No local folder ${model}; as a Hub id: ${error.cliMessage}`,
      hint: {
        library:
          error.hint?.library ??
          'Check the path (a folder needs config.json and the weights), or the Hub id.',
        cli:
          error.hint?.cli ??
          'check the path (./a/b for a folder), or the Hub id (`dcae models` lists the released ones)',
      },
    });
  }
}

async function resolveFolder(
  source: ModelSource & { kind: 'folder' },
  model: string,
  catalog: ModelCatalog,
): Promise<ResolvedModel> {
  const directory =
    source.path === '~' || source.path.startsWith('~/') ? join(homedir(), source.path.slice(1)) : source.path;
  if (!(await isDirectory(directory))) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${model} is not a folder. A model is a local folder, a Hub id such as mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers[@revision], or an https:// URL.`,
      { source: model },
    );
  }
  const hasConfig = await stat(join(directory, CONFIG_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
  const json = hasConfig
    ? await readConfig(join(directory, CONFIG_FILE), `${model}/${CONFIG_FILE}`)
    : undefined;
  const found = json === undefined ? undefined : layoutOfConfig(catalog, json);
  const layout =
    found?.layout === 'original'
      ? await refineOriginal(catalog, found.modelName, join(directory, WEIGHTS_FILE.original))
      : found?.layout;
  return describe(catalog, source, model, directory, layout, found?.modelName, undefined);
}

async function resolveHub(
  source: ModelSource & { kind: 'hub' },
  options: ResolveModelOptions,
  { configAttempts }: { configAttempts?: number } = {},
): Promise<ResolvedModel> {
  const catalog = options.catalog ?? AUTOENCODER_CATALOG;
  const { repo, subfolder } = source;
  checkHubRepo(repo);
  // The argument's own spelling, `org/name[/subfolder][@revision]`.
  const name = formatHubRepoRef({
    repo: subfolder === undefined ? repo : `${repo}/${subfolder}`,
    revision: source.revision,
  });
  const inRepo = (file: string): string => (subfolder === undefined ? file : `${subfolder}/${file}`);
  const fetch = async (file: string, revision: string | undefined, what: string, attempts?: number) => {
    try {
      return await hubDownload(repo, inRepo(file), {
        ...options,
        revision,
        ...(attempts === undefined ? {} : { retry: { ...options.retry, attempts } }),
      });
    } catch (error) {
      if (
        DcaeError.is(error, 'HTTP_STATUS') &&
        error.detail?.status === 404 &&
        error.detail.hubErrorCode === 'EntryNotFound'
      ) {
        throw new DcaeError('MODEL_NOT_FOUND', `${name} has no ${inRepo(file)}: ${what}.`, {
          source: name,
          cause: error,
        });
      }
      throw error;
    }
  };
  const config = await fetch(
    CONFIG_FILE,
    source.revision,
    'is it a DC-AE model repo (and is the subfolder right)?',
    configAttempts,
  ).catch(async (error: unknown) => {
    // No config.json: a TAESANA folder is its .pth files alone (docs/taesana.md).
    const taesana = await taesanaFiles(error, (file, revision) =>
      fetch(file, revision ?? source.revision, 'a TAESANA folder', configAttempts),
    );
    return { taesana };
  });
  if ('taesana' in config) {
    const first = config.taesana[0]!;
    return describe(catalog, source, name, dirname(first.path), undefined, undefined, first.commit);
  }
  const found = layoutOfConfig(catalog, await readConfig(config.path, `${name}/${inRepo(CONFIG_FILE)}`));
  const weightsFile =
    options.weightsFile ?? WEIGHTS_FILE[found.layout === 'diffusers' ? 'diffusers' : 'original'];
  const weights = await fetch(
    weightsFile,
    config.commit,
    `its config.json is a ${found.layout === 'diffusers' ? 'diffusers' : 'original-format'} config, which needs that file`,
  );
  const layout =
    found.layout === 'original' || (found.layout === 'diffusers' && weightsFile !== WEIGHTS_FILE.diffusers)
      ? await refineOriginal(catalog, found.modelName, weights.path)
      : found.layout;
  return describe(catalog, source, name, dirname(config.path), layout, found.modelName, config.commit);
}

async function resolveUrl(
  source: ModelSource & { kind: 'url' },
  options: ResolveModelOptions,
): Promise<ResolvedModel> {
  const catalog = options.catalog ?? AUTOENCODER_CATALOG;
  const name = source.file === undefined ? source.folderUrl : `${source.folderUrl}${source.file}`;
  const fetch = async (file: string, what: string) => {
    try {
      return await downloadUrlFile(source.folderUrl, file, options);
    } catch (error) {
      if (DcaeError.is(error, 'HTTP_STATUS') && error.detail?.status === 404) {
        throw new DcaeError(
          'MODEL_NOT_FOUND',
          `${displayUrl(source.folderUrl)}${file} does not exist: ${what}.`,
          {
            source: name,
            cause: error,
          },
        );
      }
      throw error;
    }
  };
  const config = await fetch(
    CONFIG_FILE,
    'a model URL names a folder (or a file in it) that holds config.json',
  ).catch(async (error: unknown) => {
    // No config.json: a TAESANA folder is its .pth files alone (docs/taesana.md).
    const taesana = await taesanaFiles(error, (file) => fetch(file, 'a TAESANA folder'));
    return { taesana };
  });
  if ('taesana' in config) {
    return describe(catalog, source, name, dirname(config.taesana[0]!.path), undefined, undefined, undefined);
  }
  const found = layoutOfConfig(
    catalog,
    await readConfig(config.path, `${displayUrl(source.folderUrl)}${CONFIG_FILE}`),
  );
  const weightsFile =
    options.weightsFile ?? WEIGHTS_FILE[found.layout === 'diffusers' ? 'diffusers' : 'original'];
  if (source.file !== undefined && source.file !== CONFIG_FILE && source.file !== weightsFile) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${name}: the folder's config.json is a ${found.layout} config, whose weights are ${weightsFile}, not ${source.file}.`,
      { source: name },
    );
  }
  const weights = await fetch(weightsFile, `config.json is a ${found.layout} config, which needs that file`);
  const layout =
    found.layout === 'original' || (found.layout === 'diffusers' && weightsFile !== WEIGHTS_FILE.diffusers)
      ? await refineOriginal(catalog, found.modelName, weights.path)
      : found.layout;
  return describe(catalog, source, name, dirname(config.path), layout, found.modelName, undefined);
}

/**
 * After a folder turned out to have no config.json (`missing`, a MODEL_NOT_FOUND): its TAESANA
 * files, `taesana_encoder.pth` and/or `taesana_decoder.pth`, fetched into the same cache folder;
 * the second at the commit of the first. Neither there: `missing` is rethrown.
 */
async function taesanaFiles<T extends { path: string; commit?: string }>(
  missing: unknown,
  fetchFile: (file: string, revision: string | undefined) => Promise<T>,
): Promise<T[]> {
  if (!DcaeError.is(missing, 'MODEL_NOT_FOUND')) throw missing;
  const found: T[] = [];
  for (const file of TAESANA_RELEASE.files) {
    try {
      found.push(await fetchFile(file, found[0]?.commit));
    } catch (error) {
      if (!DcaeError.is(error, 'MODEL_NOT_FOUND')) throw error;
    }
  }
  if (found.length === 0) throw missing;
  return found;
}

function describe(
  catalog: ModelCatalog,
  source: ModelSource,
  name: string,
  directory: string,
  layout: ModelLayout | undefined,
  modelName: string | undefined,
  commit: string | undefined,
): ResolvedModel {
  const known =
    (source.kind === 'hub' ? catalog.find(source.repo) : undefined) ??
    (modelName === undefined ? undefined : catalog.find(modelName));
  return {
    source,
    name,
    directory,
    layout,
    weightsFile:
      layout === undefined ? undefined : WEIGHTS_FILE[layout === 'diffusers' ? 'diffusers' : 'original'],
    modelName,
    commit,
    known,
  };
}

/** Largest config.json read. */
const MAX_CONFIG_BYTES = 10_000_000;

async function readConfig(path: string, source: string): Promise<JsonValue> {
  const { size } = await stat(path);
  if (size > MAX_CONFIG_BYTES) {
    throw new DcaeError('CONFIG_TOO_LARGE', `${source} is ${size} bytes; a model config is a few kB.`, {
      source,
    });
  }
  return parseJsonConfig(await readFile(path, 'utf8'), { source });
}

/** The layout a config.json implies: `model_name` → original (or combined, for a released diffusion repo), else diffusers. */
function layoutOfConfig(
  catalog: ModelCatalog,
  json: JsonValue,
): { layout: ModelLayout; modelName: string | undefined } {
  const modelName =
    typeof json === 'object' && json !== null && !Array.isArray(json) && typeof json.model_name === 'string'
      ? json.model_name
      : undefined;
  if (modelName === undefined) return { layout: 'diffusers', modelName };
  return { layout: catalog.find(modelName)?.layout === 'combined' ? 'combined' : 'original', modelName };
}

/**
 * An original-format `model_name` that is neither an autoencoder preset nor a released repo may
 * still be a diffusion checkpoint: its weights then hold `autoencoder.` and `diffusion_model.`
 * tensors. Only the header is read; a missing or unreadable file leaves the answer to the loader.
 */
async function refineOriginal(
  catalog: ModelCatalog,
  modelName: string | undefined,
  weightsPath: string,
): Promise<ModelLayout> {
  if (modelName === undefined || catalog.find(modelName)?.kind === 'autoencoder') return 'original';
  const file = await fileSource(weightsPath)
    .then(openSafetensors)
    .catch(() => undefined);
  if (file === undefined) return 'original';
  try {
    const keys = [...file.header.tensors.keys()];
    const combined =
      keys.some((k) => k.startsWith('diffusion_model.')) &&
      keys.some((k) => k.startsWith(COMBINED_AUTOENCODER_PREFIX));
    return combined ? 'combined' : 'original';
  } finally {
    await file.close();
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
