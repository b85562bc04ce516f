import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '@dcae/core';
import type * as PlaywrightCore from 'playwright-core';
import type { Browser, BrowserContext } from 'playwright-core';
import type { DcAeConfig, QuantizationSpec } from '@dcae/autoencoder';
import type {
  Runner,
  RunnerInfo,
  RunnerMemory,
  RunnerSpec,
  TensorRef,
  WebGpuProbe,
} from '../browser/runner.js';

/**
 * Headless Chromium (the system's, driven by playwright-core) and a local HTTP server for it, so
 * the `runtimes` scenario can run onnxruntime-web's wasm and WebGPU backends where they are meant
 * to run. The server answers on 127.0.0.1 only, with COOP/COEP on every response (wasm threads
 * need a cross-origin isolated page, and the worker scripts need the headers too), and serves:
 * `/` the page, `/runner.js` the bundled `browser/runner.ts`, `/ort/` onnxruntime-web's files,
 * `/model/` one model folder and `/data/<set>/` float32 tensors held in memory.
 */

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

const COI_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>dcae bench</title>
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.bundle.min.mjs" } }</script>
<script type="module" src="/runner.js"></script>
`;

/**
 * How long one page may take to set up (wasm compile, sessions) or to run one case; a full-width
 * model at 512² on one thread takes minutes.
 */
const PAGE_TIMEOUT_MS = 600_000;

export interface ChromiumContent {
  /** The model folder and the files of it the page fetches. */
  readonly modelFolder: string;
  readonly modelFiles: readonly string[];
  /** The DC-AE architecture when the folder has no config.json. */
  readonly config?: DcAeConfig;
  /** The pages' tiling: `'never'` (default) or the library's `'auto'`. */
  readonly tiling?: 'never' | 'auto';
  /** int8 pages: the calibration their model quantizes with (float32 when absent). */
  readonly quantization?: QuantizationSpec;
  /**
   * Sets of float32 tensors by name (e.g. one per image size), served as raw little-endian bytes
   * under `/data/<set>/<tensor>`: the encode input, its reference latent and the decode reference.
   */
  readonly tensors: Readonly<Record<string, TensorSet>>;
}

export type TensorSet = Readonly<Record<'image' | 'latent' | 'decoded', HostTensor<'float32'>>>;

/** One page with its own onnxruntime-web (one device, one thread count: fixed per page). */
export interface ChromiumPage {
  readonly info: RunnerInfo;
  /** Runs one encode or decode in the page; resolves to the page's own time for it (ms). */
  run(operation: 'encode' | 'decode'): Promise<number>;
  /** The page's wasm heap and its `measureUserAgentSpecificMemory()`. */
  memory(): Promise<RunnerMemory>;
  close(): Promise<void>;
}

export interface ChromiumHost {
  /** e.g. `Chromium 156.0.8078.108` with the executable's path. */
  readonly version: string;
  /** What a fresh page finds for WebGPU (the page is closed again). */
  probeWebGpu(): Promise<WebGpuProbe>;
  /** A page running `device` with `threads` wasm threads on the tensor set `set`. */
  open(device: 'wasm' | 'webgpu', threads: number, set: string): Promise<ChromiumPage>;
  /**
   * Memory of every Chromium process this bench started (browser, renderers, GPU and utility
   * processes: the descendants of this Node process named chrom*), summed from /proc: proportional
   * set size (shared pages split between the processes that map them), or RSS where the kernel has
   * no smaps_rollup; undefined where there is no /proc.
   */
  rssBytes(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** The Chromium the bench uses: `CHROMIUM_PATH`, or Debian's `/usr/bin/chromium`. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM;
}

/**
 * Launches Chromium and starts the server, or says why it cannot (no executable, no
 * playwright-core, a failed launch): callers report that as skipped, not as a failure.
 */
export async function launchChromium(content: ChromiumContent): Promise<ChromiumHost | { skipped: string }> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    return {
      skipped: `no Chromium at ${executablePath} (install it, e.g. \`apt-get install chromium\`, or set CHROMIUM_PATH)`,
    };
  }
  const runnerFile = fileURLToPath(new URL('./browser/runner.js', import.meta.url));
  if (!existsSync(runnerFile))
    return {
      skipped: `the page bundle ${runnerFile} is missing; build @dcae/bench (\`pnpm turbo run build\`)`,
    };
  let playwright: typeof PlaywrightCore;
  try {
    playwright = await import('playwright-core');
  } catch (error) {
    return { skipped: `playwright-core could not be loaded: ${messageOf(error)}` };
  }
  const server = await serve(content, runnerFile);
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let browser: Browser;
  try {
    browser = await playwright.chromium.launch({
      executablePath,
      headless: true,
      timeout: 60_000,
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // measureUserAgentSpecificMemory() answers at once instead of at the next GC.
        '--enable-blink-features=ForceEagerMeasureMemory',
      ],
    });
  } catch (error) {
    await closeServer(server);
    return { skipped: `Chromium (${executablePath}) did not start: ${messageOf(error).split('\n')[0]}` };
  }
  return {
    version: `Chromium ${browser.version()} (${executablePath})`,
    async probeWebGpu() {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${origin}/`);
        await page.waitForFunction(() => 'dcaeBench' in globalThis, undefined, { timeout: 60_000 });
        return await withTimeout(
          page.evaluate(() => (globalThis as unknown as { dcaeBench: Runner }).dcaeBench.probe()),
          60_000,
          'asking for a WebGPU adapter',
        );
      } finally {
        await context.close();
      }
    },
    async open(device, threads, set) {
      const tensors = content.tensors[set];
      if (tensors === undefined) throw new Error(`no tensor set "${set}"`);
      const ref = (name: keyof TensorSet): TensorRef => ({
        url: `${origin}/data/${set}/${name}`,
        shape: tensors[name].shape,
      });
      const context: BrowserContext = await browser.newContext();
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      const spec: RunnerSpec = {
        device,
        threads,
        wasmPaths: `${origin}/ort/`,
        modelUrl: `${origin}/model/`,
        modelFiles: content.modelFiles,
        config: content.config,
        tiling: content.tiling ?? 'never',
        ...(content.quantization === undefined ? {} : { quantization: content.quantization }),
        image: ref('image'),
        latent: ref('latent'),
        decoded: ref('decoded'),
      };
      const inPage = async <T>(what: string, task: Promise<T>): Promise<T> => {
        try {
          return await withTimeout(task, PAGE_TIMEOUT_MS, what);
        } catch (error) {
          const console = errors.length > 0 ? ` (page errors: ${errors.slice(-3).join(' | ')})` : '';
          throw new Error(`Chromium ${device} ${threads}T: ${what} failed: ${messageOf(error)}${console}`);
        }
      };
      try {
        await inPage('loading the page', page.goto(`${origin}/`));
        await inPage(
          'loading runner.js',
          page.waitForFunction(() => 'dcaeBench' in globalThis, undefined, { timeout: 60_000 }),
        );
        const info = await inPage(
          'setup',
          page.evaluate((s) => (globalThis as unknown as { dcaeBench: Runner }).dcaeBench.setup(s), spec),
        );
        return {
          info,
          run: (operation) =>
            inPage(
              operation,
              page.evaluate(
                (op) => (globalThis as unknown as { dcaeBench: Runner }).dcaeBench.run(op),
                operation,
              ),
            ),
          memory: () =>
            inPage(
              'reading memory',
              page.evaluate(() => (globalThis as unknown as { dcaeBench: Runner }).dcaeBench.memory()),
            ),
          close: async () => {
            await page
              .evaluate(() => (globalThis as unknown as { dcaeBench: Runner }).dcaeBench.dispose())
              .catch(() => undefined);
            await context.close();
          },
        };
      } catch (error) {
        await context.close().catch(() => undefined);
        throw error;
      }
    },
    rssBytes: () => descendantsRss(process.pid, /^chrom/),
    async close() {
      await browser.close().catch(() => undefined);
      await closeServer(server);
    },
  };
}

async function serve(content: ChromiumContent, runnerFile: string): Promise<Server> {
  const ortDir = dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
  const data = new Map(
    Object.entries(content.tensors).flatMap(([set, tensors]) =>
      Object.entries(tensors).map(([name, t]) => [
        `${set}/${name}`,
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      ]),
    ),
  );
  const fileIn = (folder: string, name: string): string | undefined =>
    name === basename(name) && name !== '' && !name.startsWith('.') ? join(folder, name) : undefined;

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    const send = (status: number, body: string | Buffer, type: string): void => {
      response.writeHead(status, { ...COI_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(body);
    };
    const sendFile = (file: string | undefined): void => {
      if (file === undefined) return send(404, 'not found', 'text/plain');
      readFile(file).then(
        (bytes) => send(200, bytes, CONTENT_TYPES[extname(file)] ?? 'application/octet-stream'),
        () => send(404, `not found: ${path}`, 'text/plain'),
      );
    };
    const [, top = '', name = ''] = /^\/([^/]*)\/?(.*)$/.exec(path) ?? [];
    // `name` may contain a slash only under /data/ (`<set>/<tensor>`), looked up in a map.
    if (path === '/') return send(200, PAGE, CONTENT_TYPES['.html']!);
    if (path === '/runner.js' || path === '/runner.js.map')
      return sendFile(join(dirname(runnerFile), basename(path)));
    if (top === 'ort') return sendFile(fileIn(ortDir, name));
    if (top === 'model')
      return sendFile(content.modelFiles.includes(name) ? fileIn(content.modelFolder, name) : undefined);
    const tensor = top === 'data' ? data.get(name) : undefined;
    if (tensor !== undefined) return send(200, tensor, 'application/octet-stream');
    send(404, `not found: ${path}`, 'text/plain');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

/** Summed PSS (else VmRSS) of the descendants of `root` whose name matches `name`, from /proc (Linux). */
async function descendantsRss(root: number, name: RegExp): Promise<number | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  const processes: { pid: number; ppid: number; name: string }[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat?.lastIndexOf(')') ?? -1;
    if (stat === undefined || close < 0) continue;
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    processes.push({ pid: Number(entry), ppid, name: stat.slice(stat.indexOf('(') + 1, close) });
  }
  const children = new Map<number, number[]>();
  for (const p of processes) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const names = new Map(processes.map((p) => [p.pid, p.name]));
  const queue = [...(children.get(root) ?? [])];
  let total = 0;
  while (queue.length > 0) {
    const pid = queue.pop()!;
    queue.push(...(children.get(pid) ?? []));
    if (!name.test(names.get(pid) ?? '')) continue;
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kb = /^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    if (kb !== undefined) total += Number(kb) * 1024;
  }
  return total;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function withTimeout<T>(task: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  return Promise.race([task, timeout]).finally(() => clearTimeout(timer));
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
