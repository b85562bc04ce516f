import { DcaeError } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import { firstDeviceThatAccepts } from '../src/_shared/first-device.js';

describe('firstDeviceThatAccepts (shared by the node and web runtimes)', () => {
  it('returns the first device that accepts, with the skipped and failed ones before it', async () => {
    const tried: string[] = [];
    const outcome = await firstDeviceThatAccepts({
      devices: ['a', 'b', 'c', 'd'],
      skip: (d) => (d === 'a' ? 'no shader-f16' : undefined),
      create: async (d) => {
        tried.push(d);
        if (d === 'b') throw new Error('b refuses');
        return `session on ${d}`;
      },
    });
    expect(tried).toEqual(['b', 'c']);
    expect(outcome).toMatchObject({ session: 'session on c', device: 'c', skipped: [{ device: 'a' }] });
    expect(outcome.failures.map((f) => f.device)).toEqual(['b']);
  });

  it('reports every failure and skip when no device accepts', async () => {
    const outcome = await firstDeviceThatAccepts({
      devices: ['a', 'b'],
      create: async (d): Promise<string> => {
        throw new Error(`${d} refuses`);
      },
    });
    expect(outcome.session).toBeUndefined();
    expect(outcome.failures.map((f) => (f.error as Error).message)).toEqual(['a refuses', 'b refuses']);
  });

  it('stops at a DcaeError or a fatal error instead of trying the next device', async () => {
    const tried: string[] = [];
    const bad = new DcaeError('ABORTED', 'stop');
    await expect(
      firstDeviceThatAccepts({
        devices: ['a', 'b'],
        create: async (d): Promise<string> => {
          tried.push(d);
          throw bad;
        },
      }),
    ).rejects.toBe(bad);
    const fatal = new Error('the backend is gone');
    await expect(
      firstDeviceThatAccepts({
        devices: ['a', 'b'],
        create: async (d): Promise<string> => {
          tried.push(d);
          throw new Error('crash');
        },
        fatal: () => fatal,
      }),
    ).rejects.toBe(fatal);
    expect(tried).toEqual(['a', 'a']);
  });
});
