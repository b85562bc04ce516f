import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Rebuilds dist/bin.js (tsup, this package only) when it is missing or older than src/. */
export default function setup(): void {
  const built = (() => {
    try {
      return statSync(join(root, 'dist', 'bin.js')).mtimeMs;
    } catch {
      return 0;
    }
  })();
  if (built < Math.max(newestSource(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs)) {
    execFileSync('npx', ['tsup'], { cwd: root, stdio: 'inherit' });
  }
}
