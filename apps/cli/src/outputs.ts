import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, mkdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DcaeError } from '@dcae/core';

/**
 * All files one command writes, as a transaction: every output is checked before any work starts
 * (exists without --force, same as an input, unwritable directory), written to a temporary file
 * next to its final path, and renamed into place only when all of them are ready. On any failure
 * or Ctrl-C the temporary files are removed: the user never sees a partial output.
 */
export class OutputSet {
  readonly #force: boolean;
  readonly #inputs: string[] = [];
  readonly #claimed = new Set<string>();
  readonly #staged: { temp: string; final: string }[] = [];
  readonly #createdDirs: string[] = [];
  readonly #tempDirs: string[] = [];

  constructor(options: { force: boolean }) {
    this.#force = options.force;
  }

  /** Records an input file, so that no output can replace it. */
  async addInput(path: string): Promise<void> {
    this.#inputs.push(await canonical(path));
  }

  /** Validates an output path and reserves it; returns the absolute path. */
  async claim(path: string): Promise<string> {
    const final = resolve(path);
    const real = await canonical(final);
    if (this.#inputs.includes(real)) {
      throw new DcaeError(
        'SAME_AS_INPUT',
        `Output ${path} is also an input of this command; it would be destroyed.`,
        {
          source: path,
        },
      );
    }
    if (this.#claimed.has(real)) {
      throw new DcaeError('INVALID_ARGUMENT', `Output ${path} would be written twice by this command.`, {
        source: path,
      });
    }
    const existing = await lstat(final).catch(() => undefined);
    if (existing?.isDirectory()) {
      throw new DcaeError('OUTPUT_UNWRITABLE', `Output ${path} is a directory; give a file name.`, {
        source: path,
      });
    }
    if (existing && !this.#force) {
      throw new DcaeError('OUTPUT_EXISTS', `Output ${path} already exists.`, { source: path });
    }
    await checkWritableDir(dirname(final), path);
    this.#claimed.add(real);
    return final;
  }

  /**
   * Validates an output directory (created if missing, removed again on rollback when it was
   * created here) and the files it will receive; returns the absolute directory path.
   */
  async claimDirectory(path: string, files: readonly string[]): Promise<string> {
    const dir = resolve(path);
    const info = await stat(dir).catch(() => undefined);
    if (info && !info.isDirectory()) {
      throw new DcaeError('OUTPUT_UNWRITABLE', `Output ${path} exists and is not a directory.`, {
        source: path,
      });
    }
    if (!info) {
      await checkWritableDir(dirname(dir), path);
      try {
        await mkdir(dir);
      } catch (cause) {
        throw writeError(path, cause);
      }
      this.#createdDirs.push(dir);
    }
    for (const file of files) await this.claim(join(dir, file));
    return dir;
  }

  /** A fresh temporary path in the directory of `final` (same file system, so rename is atomic). */
  tempPathFor(final: string): string {
    return join(dirname(final), `.${basename(final)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  }

  /** Writes `bytes` to a temporary file that `commit()` renames to `final` (a claimed path). */
  async stage(final: string, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const temp = this.tempPathFor(final);
    this.#staged.push({ temp, final });
    try {
      await writeFile(temp, bytes, { flag: 'wx', signal });
    } catch (cause) {
      throw writeError(final, cause);
    }
  }

  /** A new hidden directory inside `parent` for writers that produce several files; removed by commit and rollback. */
  async makeTempDir(parent: string): Promise<string> {
    const dir = join(parent, `.dcae-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    try {
      await mkdir(dir);
    } catch (cause) {
      throw writeError(dir, cause);
    }
    this.#tempDirs.push(dir);
    return dir;
  }

  /** Adopts a file some other writer already put at `temp` (e.g. in a `makeTempDir` directory). */
  adopt(temp: string, final: string): void {
    this.#staged.push({ temp, final });
  }

  /** Renames every staged file into place. Call once, after all outputs are ready. */
  async commit(): Promise<string[]> {
    const done: string[] = [];
    for (const { temp, final } of this.#staged) {
      try {
        await rename(temp, final);
      } catch (cause) {
        throw writeError(final, cause);
      }
      done.push(final);
    }
    this.#staged.length = 0;
    await this.#removeTempDirs();
    return done;
  }

  /** Removes temporary files and directories created here. Never throws. */
  async rollback(): Promise<void> {
    for (const { temp } of this.#staged)
      await rm(temp, { force: true, recursive: true }).catch(() => undefined);
    this.#staged.length = 0;
    await this.#removeTempDirs();
    for (const dir of this.#createdDirs.reverse())
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    this.#createdDirs.length = 0;
  }

  async #removeTempDirs(): Promise<void> {
    for (const dir of this.#tempDirs) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    this.#tempDirs.length = 0;
  }
}

/** The real path of `path`, or of its directory plus its name when it does not exist yet. */
async function canonical(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    try {
      return join(await realpath(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

async function checkWritableDir(dir: string, output: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new DcaeError('OUTPUT_UNWRITABLE', `Cannot write ${output}: directory ${dir} does not exist.`, {
      source: output,
    });
  }
  try {
    await access(dir, constants.W_OK);
  } catch (cause) {
    throw new DcaeError('OUTPUT_UNWRITABLE', `Cannot write ${output}: directory ${dir} is not writable.`, {
      source: output,
      cause,
    });
  }
}

function writeError(path: string, cause: unknown): DcaeError {
  const code = (cause as { code?: string }).code;
  if (code === 'ABORT_ERR')
    return new DcaeError('ABORTED', `Writing ${path} was interrupted.`, { source: path, cause });
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DcaeError('DISK_FULL', `No space left on the device while writing ${path}.`, {
      source: path,
      cause,
    });
  }
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new DcaeError('OUTPUT_UNWRITABLE', `Cannot write ${path}: ${reason}.`, { source: path, cause });
}
