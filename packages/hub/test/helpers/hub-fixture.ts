import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { DcaeError } from '@dcae/core';
import type { HubDownloadOptions } from '../../src/node/index.js';
import { HubTestServer } from './hub-server.js';

/** A test file's local Hub and the current test's cache (see {@link useHubFixture}). */
export interface HubFixture {
  /** The local Hub, started once for the file; faults and recorded requests are cleared before each test. */
  readonly hub: HubTestServer;
  /** The current test's temp folder, removed after it. */
  readonly dir: string;
  /** The current test's cache folder: `dir`, or `dir/<cacheSubdir>` (then not created). */
  readonly cacheDir: string;
  /** Warnings that downloads with `opts()` gave in the current test. */
  readonly warnings: string[];
  /** Options for the local Hub and the current cache: no token, no environment, warnings collected. */
  opts(extra?: HubDownloadOptions): HubDownloadOptions;
}

export interface HubFixtureSetup {
  /** Name prefix of the temp folders. */
  readonly prefix: string;
  /** Cache in this subfolder of the temp folder instead of the folder itself. */
  readonly cacheSubdir?: string;
  /** What `opts()` adds to every call (retries, timeouts, locks). */
  readonly defaults?: HubDownloadOptions;
}

/**
 * Registers the hooks of a hub test file: a {@link HubTestServer} for the whole file, and a fresh
 * temp cache per test (removed after it, even if the test left it read-only).
 */
export function useHubFixture(setup: HubFixtureSetup): HubFixture {
  let hub: HubTestServer | undefined;
  let dir: string | undefined;
  let warnings: string[] = [];
  const started = (): HubTestServer => hub ?? failSetup('hub');
  const cacheDir = (): string => {
    const root = dir ?? failSetup('dir');
    return setup.cacheSubdir === undefined ? root : join(root, setup.cacheSubdir);
  };

  beforeAll(async () => {
    hub = await HubTestServer.start();
  });
  afterAll(async () => {
    await hub?.close();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), setup.prefix));
    const server = started();
    server.faults.length = 0;
    server.requests.length = 0;
    server.blobOrigin = server.origin;
    warnings = [];
  });
  afterEach(async () => {
    if (dir === undefined) return;
    await chmod(dir, 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  return {
    get hub() {
      return started();
    },
    get dir() {
      return dir ?? failSetup('dir');
    },
    get cacheDir() {
      return cacheDir();
    },
    get warnings() {
      return warnings;
    },
    opts: (extra = {}) => ({
      endpoint: started().endpoint,
      cacheDir: cacheDir(),
      token: false,
      env: {},
      onWarning: (message) => warnings.push(message),
      ...setup.defaults,
      ...extra,
    }),
  };
}

function failSetup(what: string): never {
  throw new Error(`useHubFixture: ${what} is set up by its hooks; read it inside a test or hook.`);
}

/** The DcaeError `promise` rejects with (any other outcome fails the test). */
export async function failure(promise: Promise<unknown>): Promise<DcaeError> {
  try {
    await promise;
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a DcaeError');
}
