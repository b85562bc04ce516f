import { describe, expect, test } from 'vitest';
import { countMacs, DC_AE_PRESETS } from '../src/index.js';

// Independent reference: docs/model-spec.md §1.2 (an analytic counter mirroring diffusers' AutoencoderDC),
// in GMACs at 512² (encoder, decoder) and the decoder at 1024² and 4096².
const REFERENCE = [
  ['dc-ae-f32c32-sana-1.0', 647, 1046, 4184, 66949],
  ['dc-ae-f32c32-in-1.0', 1043, 1385, 5539, 88623],
  ['dc-ae-f64c128-in-1.0', 1053, 1398, 5593, 89489],
  ['dc-ae-f128c512-in-1.0', 1055, 1403, 5611, 89782],
] as const;

describe('countMacs', () => {
  test.each(REFERENCE)(
    '%s matches the published analytic counts',
    (name, enc512, dec512, dec1024, dec4096) => {
      const config = DC_AE_PRESETS[name];
      const giga = (size: number) => countMacs(config, size, size);
      const close = (actual: number, expected: number) =>
        expect(Math.abs(actual / 1e9 - expected) / expected).toBeLessThan(0.005);
      close(giga(512).encoder, enc512);
      close(giga(512).decoder, dec512);
      close(giga(1024).decoder, dec1024);
      close(giga(4096).decoder, dec4096);
    },
  );

  test('the quadratic attention branch is counted below the head-dim token count', () => {
    const config = DC_AE_PRESETS['dc-ae-f128c512-in-1.0'];
    // 128² → deepest stage 1×1 (quadratic) vs 4096² (linear everywhere): cost per pixel differs.
    const small = countMacs(config, 128, 128).decoder / 128 ** 2;
    const large = countMacs(config, 4096, 4096).decoder / 4096 ** 2;
    expect(small).not.toBeCloseTo(large, 0);
  });
});
