import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

export interface MachineInfo {
  readonly cpuModel: string;
  /** Logical cores, and the cores this process may use. */
  readonly cores: number;
  readonly availableParallelism: number;
  readonly totalMemoryGiB: number;
  readonly platform: string;
  readonly node: string;
  /** e.g. `onnxruntime-node@1.30.0`, or why it is unknown. */
  readonly runtime: string;
  /** `git rev-parse HEAD`, with `-dirty` when the work tree has changes; `unknown` outside git. */
  readonly gitSha: string;
  /**
   * MB/s of writing freshly allocated memory (64 MiB, first touch, so page faults included).
   * Some VMs fault pages in very slowly, which dominates any benchmark that allocates large buffers.
   */
  readonly freshMemoryMBps: number;
}

export function machineInfo(runtime: string): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    runtime,
    gitSha: gitSha(),
    freshMemoryMBps: Math.round(freshMemoryMBps()),
  };
}

function freshMemoryMBps(): number {
  const bytes = 64 * 2 ** 20;
  const start = performance.now();
  new Uint8Array(bytes).fill(1);
  return bytes / 1e6 / ((performance.now() - start) / 1000);
}

function gitSha(): string {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const sha = git('rev-parse', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === '' ? sha : `${sha}-dirty`;
  } catch {
    return 'unknown';
  }
}
