/**
 * What npm would publish (docs/reliability.md T12): for every public package, `npm pack --dry-run`
 * lists only built files and docs, every export and bin target is among them, nothing runs at
 * install time, and only @dcae/runtime-adapters (and the CLI that ships it) depends on onnxruntime.
 * Needs the packages built (`npm test` builds first).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');

interface PackageJson {
  name: string;
  private?: boolean;
  type?: string;
  sideEffects?: boolean;
  license?: string;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const published = ['packages', 'apps']
  .flatMap((group) => readdirSync(join(REPO, group)).map((name) => join(REPO, group, name)))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson }))
  .filter(({ pkg }) => pkg.private !== true);

/** Built code, type declarations and source maps under dist/, plus the docs npm always adds. */
const ALLOWED =
  /^(package\.json|README\.md|LICENSE(\.md)?|CHANGELOG\.md|dist\/[\w./-]+\.(js|d\.ts|js\.map))$/;

/**
 * @dcae/model-tiny is a model package (docs/training-loop.md, "The default model"): besides its
 * built entry it ships the model folder, its data notice and manifest, the held-out photos and the
 * training configs and metrics, and its licence is the NOTICE's (the data's licences), not MIT.
 */
const MODEL_PACKAGE = '@dcae/model-tiny';
const MODEL_FILES =
  /^(NOTICE|config\.json|diffusion_pytorch_model\.safetensors|data-manifest\.json|eval-heldout\.json|photos\/[\w-]+\.jpg|train\/[\w-]+\.jsonl?)$/;

/** Every file path an `exports` entry can resolve to, except the in-repo source condition. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value)
    .filter(([condition]) => condition !== '@dcae/source')
    .flatMap(([, target]) => exportTargets(target));
}

function packedFiles(dir: string): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const [report] = JSON.parse(out) as [{ files: { path: string }[] }];
  return report.files.map((f) => f.path);
}

it('finds the public packages', () => {
  expect(published.map(({ pkg }) => pkg.name).sort()).toEqual([
    '@dcae/autoencoder',
    '@dcae/cli',
    '@dcae/core',
    '@dcae/diffusion',
    '@dcae/hub',
    '@dcae/latents',
    '@dcae/model-tiny',
    '@dcae/runtime-adapters',
    '@dcae/train',
  ]);
});

describe.each(published.map(({ dir, pkg }) => ({ name: pkg.name, dir, pkg })))('$name', ({ dir, pkg }) => {
  it('packs only dist/ and docs, and every export and bin target exists in the pack', () => {
    const files = packedFiles(dir);
    const allowed = (f: string) => ALLOWED.test(f) || (pkg.name === MODEL_PACKAGE && MODEL_FILES.test(f));
    expect(files.filter((f) => !allowed(f))).toEqual([]);
    const targets = [...exportTargets(pkg.exports), ...Object.values(pkg.bin ?? {})]
      .filter((t) => t !== './package.json' && !t.includes('*'))
      .map((t) => t.replace(/^\.\//, ''));
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.filter((t) => !files.includes(t))).toEqual([]);
  });

  it('is an ESM package with no install-time scripts', () => {
    expect(pkg.type).toBe('module');
    expect(pkg.license).toBe(pkg.name === MODEL_PACKAGE ? 'SEE LICENSE IN NOTICE' : 'MIT');
    if (pkg.bin === undefined) expect(pkg.sideEffects).toBe(false);
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare'])
      expect(pkg.scripts?.[hook], hook).toBeUndefined();
  });

  it('depends on onnxruntime only where allowed', () => {
    const ort = Object.keys({ ...pkg.dependencies }).filter((d) => d.startsWith('onnxruntime'));
    // The adapters take onnxruntime as a peer; the CLI is the application that installs it.
    const allowed = pkg.name === '@dcae/cli' ? ['onnxruntime-node'] : [];
    expect(ort).toEqual(allowed);
  });
});
