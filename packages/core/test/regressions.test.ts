import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DcaeError, parseJsonConfig, parseSafetensors } from '../src/index.js';
import { checkModel } from '../src/onnx/index.js';

/** Fuzz findings (fixtures/regressions/README.md): each must now parse or throw a DcaeError. */
const REGRESSIONS = new URL('../../../fixtures/regressions/', import.meta.url);
const TARGETS = ['safetensors', 'image', 'onnx', 'config'];

const files = readdirSync(REGRESSIONS).filter((name) => name.endsWith('.bin'));
const index =
  files.length === 0
    ? []
    : (JSON.parse(readFileSync(new URL('index.json', REGRESSIONS), 'utf8')) as {
        file: string;
        target: string;
      }[]);
const inputsOf = (target: string): string[] => files.filter((name) => name.startsWith(`${target}-`));

const PARSERS: Record<string, (bytes: Uint8Array) => void> = {
  safetensors: (bytes) => {
    const file = parseSafetensors(bytes, { name: 'regression' });
    for (const name of file.header.tensors.keys()) file.tensor(name);
  },
  onnx: (bytes) => checkModel(bytes, { externalData: [{ location: 'weights.safetensors', size: 4096 }] }),
  config: (bytes) => parseJsonConfig(bytes, { source: 'regression' }),
};

describe('fuzz regressions', () => {
  it('every saved input is listed in index.json under a known target', () => {
    for (const name of files) {
      const entry = index.find((e) => e.file === name);
      expect(entry, name).toBeDefined();
      expect(TARGETS).toContain(entry?.target);
      expect(name.startsWith(`${entry?.target}-`), name).toBe(true);
    }
  });

  for (const [target, parse] of Object.entries(PARSERS)) {
    it.each(inputsOf(target))(`${target}: %s parses or throws a DcaeError`, (name) => {
      const bytes = new Uint8Array(readFileSync(new URL(name, REGRESSIONS)));
      try {
        parse(bytes);
      } catch (error) {
        expect(DcaeError.is(error), String(error instanceof Error ? error.stack : error)).toBe(true);
      }
    });
  }
});
