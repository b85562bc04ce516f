/**
 * What the playground serves besides its own code, in dev (middleware), in the production build
 * (emitted files) and from the e2e test's static server:
 * - `/ort/`: onnxruntime-web's own `ort-wasm-simd-threaded.jsep.{mjs,wasm}`, so the app sets
 *   `wasmPaths` to its origin (no CDN) and wasm threads work in a bundled build;
 * - `/fixtures/dcae/`: the repository's tiny golden fixtures (random weights + PyTorch reference
 *   outputs), read from `fixtures/dcae` at serve/build time, never copied into the app's sources;
 * - `/fixtures/diffusion/`: the tiny diffusion backbones (`tiny-dit`, `tiny-uvit`: config.json +
 *   model.safetensors), each paired with the tiny ImageNet DC-AE for decoding;
 * - `/models/model-tiny/`: the default model, `@dcae/model-tiny` (a small DC-AE trained by dcae),
 *   read from its package folder: its config.json and weights, its model card (README.md, the
 *   source of its numbers) and its two held-out photos;
 * - the headers: cross-origin isolation (wasm threads) and a Content-Security-Policy that allows
 *   WebAssembly compilation ('wasm-unsafe-eval') but no inline or foreign scripts.
 */
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import type { Plugin } from 'vite';

const require = createRequire(import.meta.url);

export const ORT_DIST = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm'));
export const ORT_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

export const FIXTURES_DIR = resolve(import.meta.dirname, '../../../fixtures/dcae');
/** Per fixture: the model folder plus the reference input and outputs. */
export const FIXTURE_FILES = [
  'config.json',
  'diffusion_pytorch_model.safetensors',
  'input.safetensors',
  'expected.safetensors',
];

export const DIFFUSION_FIXTURES_DIR = resolve(import.meta.dirname, '../../../fixtures/diffusion');
/** Per diffusion fixture: the backbone folder (the forward and sampler references stay behind). */
export const DIFFUSION_FIXTURE_FILES = ['config.json', 'model.safetensors'];
/**
 * The DC-AE fixture that decodes the diffusion fixtures' samples: the ImageNet one, as the released
 * class-conditional models sample in dc-ae-f32c32-in latents (8 latent channels, like the backbones).
 */
export const DIFFUSION_FIXTURE_AUTOENCODER = 'tiny-in-f32';

/**
 * The TAESANA fixture for the Generate view's previews (`fixtures/family2/taesana-randinit`: the
 * released architecture with random weights): its decoder and its descriptor config.json.
 */
export const TAESANA_FIXTURES_DIR = resolve(import.meta.dirname, '../../../fixtures/family2');
export const TAESANA_FIXTURE_FILES = ['config.json', 'taesana_decoder.pth'];
/** The default model's package folder (`@dcae/model-tiny`, a dependency of the playground). */
export const MODEL_TINY_DIR = dirname(require.resolve('@dcae/model-tiny/package.json'));
/** Where the page finds the default model, and the files served from its package. */
export const MODEL_TINY_PREFIX = '/models/model-tiny/';
export const MODEL_TINY_FILES = [
  'config.json',
  'diffusion_pytorch_model.safetensors',
  'README.md',
  'photos/coffee.jpg',
  'photos/chelsea.jpg',
];

/** One bundled fixture, as `/fixtures/dcae/index.json` lists it. */
export interface FixtureEntry {
  readonly name: string;
  readonly files: readonly string[];
}

export function listFixtures(): FixtureEntry[] {
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && FIXTURE_FILES.every((f) => existsSync(join(FIXTURES_DIR, d.name, f))))
    .map((d) => ({ name: d.name, files: FIXTURE_FILES }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** One bundled diffusion backbone, as `/fixtures/diffusion/index.json` lists it. */
export interface DiffusionFixtureEntry {
  readonly name: string;
  readonly files: readonly string[];
  /** The bundled DC-AE (under `/fixtures/dcae/`) that decodes its samples. */
  readonly autoencoder: string;
}

/** The TAESANA folders under `fixtures/family2` (those holding a taesana_decoder.pth). */
export function listTaesanaFixtures(): FixtureEntry[] {
  return readdirSync(TAESANA_FIXTURES_DIR, { withFileTypes: true })
    .filter(
      (d) =>
        d.isDirectory() &&
        TAESANA_FIXTURE_FILES.every((f) => existsSync(join(TAESANA_FIXTURES_DIR, d.name, f))),
    )
    .map((d) => ({ name: d.name, files: TAESANA_FIXTURE_FILES }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The bundled DC-AE a diffusion fixture pairs with: its meta.json's `autoencoder`, else the ImageNet one. */
function pairedAutoencoder(name: string): string {
  const meta = join(DIFFUSION_FIXTURES_DIR, name, 'meta.json');
  if (!existsSync(meta)) return DIFFUSION_FIXTURE_AUTOENCODER;
  const { autoencoder } = JSON.parse(readFileSync(meta, 'utf8')) as { autoencoder?: unknown };
  return typeof autoencoder === 'string' ? autoencoder : DIFFUSION_FIXTURE_AUTOENCODER;
}

export function listDiffusionFixtures(): DiffusionFixtureEntry[] {
  return readdirSync(DIFFUSION_FIXTURES_DIR, { withFileTypes: true })
    .filter(
      (d) =>
        d.isDirectory() &&
        DIFFUSION_FIXTURE_FILES.every((f) => existsSync(join(DIFFUSION_FIXTURES_DIR, d.name, f))),
    )
    .map((d) => ({
      name: d.name,
      files: DIFFUSION_FIXTURE_FILES,
      autoencoder: pairedAutoencoder(d.name),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The fixture folders served under `/fixtures/<kind>/`: where they are and what they list. */
const FIXTURE_SETS = [
  { prefix: '/fixtures/dcae/', dir: FIXTURES_DIR, files: FIXTURE_FILES, list: listFixtures },
  {
    prefix: '/fixtures/diffusion/',
    dir: DIFFUSION_FIXTURES_DIR,
    files: DIFFUSION_FIXTURE_FILES,
    list: listDiffusionFixtures,
  },
  {
    prefix: '/fixtures/taesana/',
    dir: TAESANA_FIXTURES_DIR,
    files: TAESANA_FIXTURE_FILES,
    list: listTaesanaFixtures,
  },
];

/** `dev` allows Vite's HMR websocket and the styles its client injects. */
export function securityHeaders(mode: 'dev' | 'production'): Record<string, string> {
  const csp = [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    // Models load from any https URL (Hugging Face redirects to its CDNs); onnxruntime-web fetches
    // external data from blob: URLs of cached or picked files.
    `connect-src 'self' https: blob:${mode === 'dev' ? ' ws: wss:' : ''}`,
    "img-src 'self' blob: data:",
    `style-src 'self'${mode === 'dev' ? " 'unsafe-inline'" : ''}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Content-Security-Policy': csp,
    'X-Content-Type-Options': 'nosniff',
  };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.md': 'text/markdown; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

/**
 * Answers GET or HEAD for the file at `path` with a strong ETag (size + mtime), which the
 * playground's weights cache validates against (and 304 to a matching If-None-Match, so the
 * browser reuses its copy, and its compiled wasm). Returns false when there is no such file.
 */
export function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  headers: Record<string, string>,
): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (!existsSync(path) || !statSync(path).isFile()) return false;
  const { size, mtimeMs } = statSync(path);
  const etag = `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ...headers, ETag: etag, 'Cache-Control': 'no-cache' });
    res.end();
    return true;
  }
  res.writeHead(200, {
    ...headers,
    'Content-Type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    'Content-Length': String(size),
    ETag: etag,
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'GET') createReadStream(path).pipe(res);
  else res.end();
  return true;
}

/** Maps a request path under `prefix` to a file inside `root`, refusing anything that escapes it. */
export function fileUnder(root: string, prefix: string, url: string): string | undefined {
  const pathname = decodeURIComponent(new URL(url, 'http://localhost').pathname);
  if (!pathname.startsWith(prefix)) return undefined;
  const path = resolve(root, `.${sep}${pathname.slice(prefix.length)}`);
  return path.startsWith(root + sep) ? path : undefined;
}

/** The Vite plugin: serves `/ort/`, `/models/model-tiny/` and `/fixtures/{dcae,diffusion}/` in dev, emits them into the build. */
export function playgroundAssets(): Plugin {
  return {
    name: 'dcae-playground-assets',
    configureServer(server) {
      const headers = securityHeaders('dev');
      server.middlewares.use((req, res, next) => {
        const url = req.url ?? '/';
        for (const set of FIXTURE_SETS) {
          if (url.split('?')[0] === `${set.prefix}index.json`) {
            const body = JSON.stringify(set.list());
            res.writeHead(200, {
              ...headers,
              'Content-Type': CONTENT_TYPES['.json']!,
              ETag: `"${body.length}"`,
            });
            res.end(req.method === 'HEAD' ? undefined : body);
            return;
          }
          const fixture = fileUnder(set.dir, set.prefix, url);
          if (
            fixture !== undefined &&
            set.files.some((f) => fixture.endsWith(sep + f)) &&
            sendFile(req, res, fixture, headers)
          )
            return;
        }
        const tiny = fileUnder(MODEL_TINY_DIR, MODEL_TINY_PREFIX, url);
        if (
          tiny !== undefined &&
          MODEL_TINY_FILES.some((f) => tiny === join(MODEL_TINY_DIR, f)) &&
          sendFile(req, res, tiny, headers)
        )
          return;
        const ort = fileUnder(ORT_DIST, '/ort/', url);
        if (
          ort !== undefined &&
          ORT_FILES.some((f) => ort.endsWith(sep + f)) &&
          sendFile(req, res, ort, headers)
        )
          return;
        next();
      });
    },
    generateBundle() {
      for (const file of ORT_FILES)
        this.emitFile({ type: 'asset', fileName: `ort/${file}`, source: readFileSync(join(ORT_DIST, file)) });
      for (const file of MODEL_TINY_FILES)
        this.emitFile({
          type: 'asset',
          fileName: `${MODEL_TINY_PREFIX.slice(1)}${file}`,
          source: readFileSync(join(MODEL_TINY_DIR, file)),
        });
      for (const set of FIXTURE_SETS) {
        const fixtures = set.list();
        this.emitFile({
          type: 'asset',
          fileName: `${set.prefix.slice(1)}index.json`,
          source: JSON.stringify(fixtures),
        });
        for (const { name, files } of fixtures)
          for (const file of files)
            this.emitFile({
              type: 'asset',
              fileName: `${set.prefix.slice(1)}${name}/${file}`,
              source: readFileSync(join(set.dir, name, file)),
            });
      }
    },
  };
}
