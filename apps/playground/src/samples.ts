/**
 * Sample images drawn procedurally (no image files in the repository): each stresses something
 * an autoencoder must keep, from smooth gradients to fine stripes and hard edges. Deterministic.
 */
import type { RgbImage } from '@dcae/autoencoder';

export interface Sample {
  readonly id: string;
  readonly label: string;
  /** For the thumbnail caption. */
  readonly short: string;
  readonly make: () => RgbImage;
}

export const SAMPLES: readonly Sample[] = [
  { id: 'landscape', label: 'Landscape (640×427)', short: 'Landscape', make: () => landscape(640, 427) },
  {
    id: 'checker',
    label: 'Colour chart and stripes (512×384)',
    short: 'Chart',
    make: () => colourChart(512, 384),
  },
  { id: 'rings', label: 'Zone plate (384×384)', short: 'Zone plate', make: () => zonePlate(384, 384) },
  { id: 'plasma', label: 'Plasma (512×512)', short: 'Plasma', make: () => plasma(512, 512) },
];

function image(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      const i = 3 * (y * width + x);
      data[i] = clampByte(r);
      data[i + 1] = clampByte(g);
      data[i + 2] = clampByte(b);
    }
  return { width, height, channels: 3, data };
}

function clampByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}

/** A tiny deterministic hash noise in [0, 1). */
function noise(x: number, y: number, seed = 0): number {
  let h = Math.imul(x | 0, 374761393) + Math.imul(y | 0, 668265263) + Math.imul(seed, 2147483647);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/** Smooth value noise (bilinear between lattice points), several octaves. */
function fractal(x: number, y: number, seed: number): number {
  let total = 0;
  let amplitude = 0.5;
  let frequency = 1 / 64;
  for (let octave = 0; octave < 5; octave++) {
    const [fx, fy] = [x * frequency, y * frequency];
    const [ix, iy] = [Math.floor(fx), Math.floor(fy)];
    const [tx, ty] = [fx - ix, fy - iy];
    const [sx, sy] = [tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)];
    const top = noise(ix, iy, seed + octave) * (1 - sx) + noise(ix + 1, iy, seed + octave) * sx;
    const bottom = noise(ix, iy + 1, seed + octave) * (1 - sx) + noise(ix + 1, iy + 1, seed + octave) * sx;
    total += amplitude * (top * (1 - sy) + bottom * sy);
    amplitude /= 2;
    frequency *= 2;
  }
  return total;
}

function landscape(width: number, height: number): RgbImage {
  const horizon = height * 0.62;
  const ridge = (x: number, seed: number, base: number, amp: number) => base - amp * fractal(x, 0, seed);
  return image(width, height, (x, y) => {
    const sun = Math.hypot(x - width * 0.72, y - height * 0.3);
    if (y < horizon) {
      const t = y / horizon;
      let [r, g, b] = [60 + 170 * t, 110 + 110 * t, 190 + 40 * t];
      const glow = Math.max(0, 1 - sun / (height * 0.45));
      [r, g, b] = [r + 120 * glow * glow, g + 80 * glow * glow, b - 20 * glow];
      if (sun < height * 0.07) return [255, 240, 200];
      const far = ridge(x, 3, horizon - height * 0.05, height * 0.35);
      const near = ridge(x, 7, horizon + height * 0.02, height * 0.28);
      if (y > near) return [40 + 30 * fractal(x, y, 9), 70 + 40 * fractal(x, y, 11), 45];
      if (y > far) return [r * 0.45 + 30, g * 0.5 + 20, b * 0.6 + 25];
      return [r, g, b + 10 * fractal(x, y, 5)];
    }
    // Water: the sky mirrored, darkened, with ripples.
    const ripple = Math.sin(y * 0.9 + 6 * fractal(x, y, 13)) * 0.5 + 0.5;
    const mirrored = 2 * horizon - y;
    const t = Math.max(0, mirrored / horizon);
    const glint =
      Math.abs(x - width * 0.72) < 40 * (1 - (y - horizon) / (height - horizon)) ? 60 * ripple : 0;
    return [20 + 90 * t + glint, 50 + 80 * t + glint, 90 + 70 * t + 20 * ripple];
  });
}

/** A 6×4 chart of saturated and neutral patches above fine horizontal and vertical stripes. */
function colourChart(width: number, height: number): RgbImage {
  const patches: [number, number, number][] = [
    [115, 82, 68],
    [194, 150, 130],
    [98, 122, 157],
    [87, 108, 67],
    [133, 128, 177],
    [103, 189, 170],
    [214, 126, 44],
    [80, 91, 166],
    [193, 90, 99],
    [94, 60, 108],
    [157, 188, 64],
    [224, 163, 46],
    [56, 61, 150],
    [70, 148, 73],
    [175, 54, 60],
    [231, 199, 31],
    [187, 86, 149],
    [8, 133, 161],
    [243, 243, 242],
    [200, 200, 200],
    [160, 160, 160],
    [122, 122, 121],
    [85, 85, 85],
    [52, 52, 52],
  ];
  const chartHeight = Math.floor(height * 0.7);
  return image(width, height, (x, y) => {
    if (y >= chartHeight) {
      const band = Math.floor((x / width) * 4);
      const period = [2, 3, 4, 6][band]!;
      const vertical = y - chartHeight < (height - chartHeight) / 2;
      const on = Math.floor((vertical ? x : y) / period) % 2 === 0;
      return on ? [235, 235, 235] : [20, 20, 20];
    }
    const [col, row] = [Math.floor((x / width) * 6), Math.floor((y / chartHeight) * 4)];
    const [cx, cy] = [((x / width) * 6) % 1, ((y / chartHeight) * 4) % 1];
    if (cx < 0.06 || cx > 0.94 || cy < 0.06 || cy > 0.94) return [30, 30, 30];
    return patches[row * 6 + col]!;
  });
}

/** A zone plate: rings whose frequency rises with the radius, the classic aliasing test. */
function zonePlate(width: number, height: number): RgbImage {
  return image(width, height, (x, y) => {
    const r2 = (x - width / 2) ** 2 + (y - height / 2) ** 2;
    const v = 0.5 + 0.5 * Math.cos((Math.PI * r2) / (1.2 * width));
    const hue = Math.atan2(y - height / 2, x - width / 2);
    return [
      255 * v * (0.6 + 0.4 * Math.cos(hue)),
      255 * v * (0.6 + 0.4 * Math.cos(hue + 2.1)),
      255 * v * (0.6 + 0.4 * Math.cos(hue + 4.2)),
    ];
  });
}

function plasma(width: number, height: number): RgbImage {
  return image(width, height, (x, y) => {
    const [u, v] = [x / width, y / height];
    const a =
      Math.sin(u * 10 + 4 * fractal(x, y, 21)) +
      Math.sin(v * 7 - u * 3) +
      Math.sin(Math.hypot(u - 0.5, v - 0.5) * 18);
    const t = a / 3;
    return [
      128 + 127 * Math.sin(Math.PI * t),
      128 + 127 * Math.sin(Math.PI * t + 2),
      128 + 127 * Math.sin(Math.PI * t + 4),
    ];
  });
}
