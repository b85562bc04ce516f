import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseSafetensors, toFloat32 } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { afterAll } from 'vitest';

export const REPO = resolve(import.meta.dirname, '../../..');
export const BIN = join(REPO, 'apps/cli/dist/bin.js');
export const FIXTURES = join(REPO, 'fixtures/dcae');
export const MODELS = ['tiny-in-f32', 'tiny-sana-f32'] as const;

export interface CliResult {
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `dcae` with `args` in `cwd` (default: the repository root). */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: options.cwd ?? REPO,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 << 20,
        ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ code, signal: error?.signal ?? null, stdout, stderr });
      },
    );
  });
}

/** A fresh directory under the OS temp dir, removed after the test file. */
const created: string[] = [];
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dcae-cli-'));
  created.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of created) await rm(dir, { recursive: true, force: true });
});

export async function readTensor(path: string, name: string): Promise<HostTensor<'float32'>> {
  return toFloat32(parseSafetensors(await readFile(path), { name: path }).tensor(name));
}

export async function readMetadata(path: string): Promise<ReadonlyMap<string, string>> {
  return parseSafetensors(await readFile(path), { name: path }).header.metadata;
}

export function maxAbsDiff(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  return max;
}

export function maxAbs(t: HostTensor<'float32'>): number {
  return t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/** The fixtures' rule: max |actual − expected| ≤ 1e-4 · max(1, max |expected|). */
export function tolerance(expected: HostTensor<'float32'>): number {
  return 1e-4 * Math.max(1, maxAbs(expected));
}
