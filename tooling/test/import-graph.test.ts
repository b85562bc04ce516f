/**
 * The import graph (docs/ARCHITECTURE.md): no cycle between source files, packages import only
 * the packages their arrows allow, and the autoencoder families import only from the generic
 * layer. Reads the sources only (no build needed); fast.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');

/**
 * The one-way arrows between workspace packages: which `@dcae/*` packages each package's sources
 * (and package.json dependencies) may name. Apps may use every package.
 */
export const ALLOWED_DEPENDENCIES: Readonly<Record<string, readonly string[]>> = {
  '@dcae/core': [],
  '@dcae/runtime-adapters': ['@dcae/core'],
  '@dcae/hub': ['@dcae/core'],
  '@dcae/autoencoder': ['@dcae/hub', '@dcae/core'],
  '@dcae/diffusion': ['@dcae/autoencoder', '@dcae/hub', '@dcae/core'],
  '@dcae/train': ['@dcae/autoencoder', '@dcae/hub', '@dcae/core'],
  '@dcae/latents': ['@dcae/autoencoder', '@dcae/hub', '@dcae/core'],
  // The bundled default model (weights + a path-only entry): a leaf that only apps depend on.
  '@dcae/model-tiny': [],
};

/** Every .ts source file (not .d.ts) under `dir`. */
function sources(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const SPECIFIER =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The module specifiers a file imports or re-exports from (type-only ones included). */
export function specifiers(text: string): string[] {
  return [...text.matchAll(SPECIFIER)].map((m) => (m[1] ?? m[2])!);
}

/** The file a relative specifier names, if it is one of `files`. */
function resolveRelative(from: string, spec: string, files: ReadonlySet<string>): string | undefined {
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(js|mjs|ts)$/, '');
  return [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, join(stem, 'index.ts'), base].find((c) => files.has(c));
}

/** Strongly connected components with more than one file (or a self-import): the cycles. */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  // Iterative Tarjan: deep chains of imports must not overflow the call stack.
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: { node: string; next: number }[] = [{ node: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.next < edges.length) {
        const to = edges[frame.next++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || edges.includes(frame.node)) found.push(component.sort());
      }
    }
  }
  return found;
}

interface Workspace {
  readonly dir: string;
  readonly name: string;
  readonly dependencies: readonly string[];
  readonly files: readonly string[];
}

const workspaces: Workspace[] = ['packages', 'apps']
  .flatMap((group) => readdirSync(join(REPO, group)).map((name) => join(REPO, group, name)))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    return {
      dir,
      name: pkg.name,
      dependencies: Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }),
      files: sources(join(dir, 'src')),
    };
  });

const allFiles = workspaces.flatMap((w) => w.files);
const fileSet = new Set(allFiles);
const imports = new Map(allFiles.map((f) => [f, specifiers(readFileSync(f, 'utf8'))] as const));
const rel = (path: string): string => relative(REPO, path);

describe('import graph', () => {
  it('finds a cycle when there is one (checker self-test)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(
      specifiers(`import type { X } from './x.js';\nexport * from "./y.js";\nawait import('./z.js');`),
    ).toEqual(['./x.js', './y.js', './z.js']);
  });

  it('has no cycle between source files (type-only imports included)', () => {
    const graph = new Map(
      allFiles.map((f) => [
        f,
        imports
          .get(f)!
          .filter((s) => s.startsWith('.'))
          .map((s) => resolveRelative(f, s, fileSet))
          .filter((t): t is string => t !== undefined),
      ]),
    );
    expect(graph.size).toBeGreaterThan(100);
    expect(cycles(graph).map((c) => c.map(rel))).toEqual([]);
  });

  it('follows the one-way arrows between packages (sources and package.json)', () => {
    const problems: string[] = [];
    for (const w of workspaces) {
      const allowed = ALLOWED_DEPENDENCIES[w.name];
      if (allowed === undefined) continue; // apps may use every package
      for (const dep of w.dependencies.filter((d) => d.startsWith('@dcae/'))) {
        if (!allowed.includes(dep)) problems.push(`${w.name} package.json depends on ${dep}`);
      }
      for (const file of w.files) {
        for (const spec of imports.get(file)!) {
          const target = /^(@dcae\/[^/]+)/.exec(spec)?.[1];
          if (target !== undefined && target !== w.name && !allowed.includes(target)) {
            problems.push(`${rel(file)} imports ${spec}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps the autoencoder families apart: dc-ae/ and sd-vae/ import only from base/ and themselves', () => {
    const src = join(REPO, 'packages/autoencoder/src');
    const families = readdirSync(src).filter(
      (d) => statSync(join(src, d)).isDirectory() && !['base', 'node', 'image'].includes(d),
    );
    expect(families).toEqual(expect.arrayContaining(['dc-ae', 'sd-vae']));
    const problems: string[] = [];
    for (const family of families) {
      for (const file of sources(join(src, family))) {
        for (const spec of imports.get(file)!.filter((s) => s.startsWith('.'))) {
          const target = resolveRelative(file, spec, fileSet);
          const top = target === undefined ? undefined : relative(src, target).split(/[\\/]/)[0];
          if (top !== family && top !== 'base') problems.push(`${rel(file)} imports ${spec}`);
        }
      }
    }
    const base = sources(join(src, 'base')).flatMap((file) =>
      imports
        .get(file)!
        .filter((s) => s.startsWith('.'))
        .map((s) => [file, s, resolveRelative(file, s, fileSet)] as const)
        .filter(([, , t]) => t === undefined || relative(src, t).split(/[\\/]/)[0] !== 'base')
        .map(([f, s]) => `${rel(f)} imports ${s}`),
    );
    expect([...problems, ...base]).toEqual([]);
  });
});
