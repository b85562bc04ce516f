import { readdirSync, readFileSync } from 'node:fs';
import { DcaeError, parseJsonConfig } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import { parseDcAeConfig, readImageHeader } from '../src/index.js';

/** Fuzz findings (fixtures/regressions/README.md) for this package's parsers: each must parse or throw a DcaeError. */
const REGRESSIONS = new URL('../../../fixtures/regressions/', import.meta.url);

const files = readdirSync(REGRESSIONS).filter((name) => name.endsWith('.bin'));
const inputsOf = (target: string): string[] => files.filter((name) => name.startsWith(`${target}-`));

const PARSERS: Record<string, (bytes: Uint8Array) => void> = {
  image: (bytes) => readImageHeader(bytes, undefined, 'regression'),
  config: (bytes) =>
    parseDcAeConfig(parseJsonConfig(bytes, { source: 'regression' }), { source: 'regression' }),
};

describe('fuzz regressions', () => {
  it('the folder holds only known targets', () => {
    const known = ['safetensors', 'image', 'onnx', 'config'];
    for (const name of files)
      expect(
        known.some((target) => name.startsWith(`${target}-`)),
        name,
      ).toBe(true);
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
