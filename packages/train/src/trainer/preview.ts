import type { RgbImage } from '@dcae/autoencoder';

/**
 * A preview grid: one column per held-out image, originals in the top row and reconstructions
 * below, 4 px gaps of mid-grey. Images of different sizes are placed top-left in equal cells.
 */
export function previewGrid(originals: readonly RgbImage[], reconstructions: readonly RgbImage[]): RgbImage {
  const gap = 4;
  const n = Math.max(1, originals.length);
  const cellW = Math.max(1, ...originals.map((i) => i.width));
  const cellH = Math.max(1, ...originals.map((i) => i.height));
  const width = n * cellW + (n + 1) * gap;
  const height = 2 * cellH + 3 * gap;
  const data = new Uint8Array(width * height * 3).fill(128);
  const blit = (image: RgbImage, x0: number, y0: number): void => {
    for (let y = 0; y < image.height; y++) {
      const src = y * image.width * 3;
      data.set(image.data.subarray(src, src + image.width * 3), ((y0 + y) * width + x0) * 3);
    }
  };
  originals.forEach((image, i) => {
    const x = gap + i * (cellW + gap);
    blit(image, x, gap);
    const r = reconstructions[i];
    if (r !== undefined) blit(r, x, 2 * gap + cellH);
  });
  return { width, height, channels: 3, data };
}
