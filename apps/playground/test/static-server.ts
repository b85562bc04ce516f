/**
 * A static server for the built playground on 127.0.0.1, with the production headers (COOP/COEP
 * for wasm threads, the CSP) and ETags, as a real deployment would serve it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { fileUnder, securityHeaders, sendFile } from '../build/assets.js';

export interface StaticServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `root`. `headersFor` may change the production headers per request path (the header
 * variants of docs/reliability.md E8: no isolation, isolation missing on some files, another CSP).
 */
export async function serveStatic(
  root: string,
  headersFor: (path: string, headers: Record<string, string>) => Record<string, string> = (_, h) => h,
): Promise<StaticServer> {
  const production = securityHeaders('production');
  const server = createServer((req, res) => {
    const url = req.url === '/' || req.url?.startsWith('/?') ? '/index.html' : (req.url ?? '/');
    const headers = headersFor(url.split('?')[0]!, { ...production });
    const path = fileUnder(root, '/', url);
    if (path !== undefined && sendFile(req, res, path, headers)) return;
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const DIST = join(import.meta.dirname, '../dist');

const APP = resolve(import.meta.dirname, '..');

/** Builds the playground for production into a fresh temporary folder and returns it. */
export async function buildPlayground(prefix: string): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), prefix));
  await build({
    root: APP,
    configFile: join(APP, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}

/** Debian's headless Chromium (CHROMIUM_PATH overrides), quiet: no sync, updates or background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A built playground served on loopback and open in headless Chromium, ready once it left "starting". */
export interface OpenPlayground {
  readonly page: Page;
  /** Page errors seen so far (a test expects none). */
  readonly problems: string[];
  /** Closes the browser and the server and removes the build. */
  close(): Promise<void>;
}

/** Builds the playground into a temporary folder (`prefix`), serves it and opens it in Chromium. */
export async function openPlayground(prefix: string): Promise<OpenPlayground> {
  const outDir = await buildPlayground(prefix);
  const server = await serveStatic(outDir);
  const browser = await launchChromium();
  const problems: string[] = [];
  const close = async (): Promise<void> => {
    await browser.close();
    await server.close();
    await rm(outDir, { recursive: true, force: true });
  };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.state !== 'starting', undefined, {
      timeout: 60_000,
    });
    return { page, problems, close };
  } catch (error) {
    await close();
    throw error;
  }
}
