// Tiling seams on a real model (docs/tiling.md, "Seams on the trained default model"): a held-out
// photo is encoded whole, and its latent is decoded twice, whole (`tiling: 'never'`) and in tiles
// (dcae's aligned layout). At every tile border (tile edges and the points where one tile's kept
// output hands over to the next) the mean absolute gradient between neighbouring pixels is
// compared, horizontally (column offsets) and vertically (row offsets), with the mean at the other
// latent-cell boundaries (multiples of f: every tile border lies on one, and the decoder's pixel
// shuffle leaves a faint grid there even untiled) and everywhere else; for the tiled image and, at
// the same offsets, the untiled one. A seam that tiling adds shows as a tiled border gradient above
// the untiled one at the same offsets. Gradients are in 8-bit levels of the written image
// (0…255); the largest |tiled − untiled| is given in output units ([−1, 1]) and in 8-bit levels.
//   usage: node scripts/seams.mjs [MODEL_DIR] [--photo FILE]... [--tile SIZE/OVERLAP]... [--json OUT.json]
//   defaults: this package's folder; photos/coffee.jpg and photos/chelsea.jpg; tiles 512/64 (the
//   default geometry), 256/64 and 128/32
import { writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { axisTiles, fitToMultiple, imageToTensor, tensorToImages } from '@dcae/autoencoder';
import { loadAutoencoder, readImage } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const photos = [];
const geometries = [];
let model = ROOT;
let jsonOut;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--photo') photos.push(args[++i]);
  else if (arg === '--tile') {
    const [tileSize, overlap] = args[++i].split('/').map(Number);
    geometries.push({ tileSize, overlap });
  } else if (arg === '--json') jsonOut = args[++i];
  else model = arg;
}
if (photos.length === 0) photos.push(join(ROOT, 'photos/coffee.jpg'), join(ROOT, 'photos/chelsea.jpg'));
if (geometries.length === 0)
  geometries.push(
    { tileSize: 512, overlap: 64 },
    { tileSize: 256, overlap: 64 },
    { tileSize: 128, overlap: 32 },
  );

/**
 * Pixel offsets along an axis of `cells` latent cells where the tiled output changes source: the
 * edges of every tile and the hand-over points of the kept ranges (see runTiled, docs/tiling.md).
 */
function borders(cells, f, { tileSize, overlap }) {
  const tile = tileSize / f;
  const stride = Math.floor((tileSize - overlap) / f);
  const tiles = axisTiles(cells, tile, stride, f);
  const out = new Set();
  for (const t of tiles) {
    out.add(t.start * f);
    out.add((t.start + t.size) * f);
    out.add(t.start * f + t.keepFrom);
  }
  return {
    positions: [...out].filter((p) => p > 0 && p < cells * f).sort((a, b) => a - b),
    tiles: tiles.length,
  };
}

/**
 * Mean |image[x] − image[x − 1]| (horizontal: x a column offset) at the tile-border offsets, at the
 * other latent-cell boundaries (offsets that are multiples of f: the decoder's pixel shuffle makes
 * them a grid of its own, tiled or not) and at every other offset, over all rows and channels; the
 * same vertically with row offsets.
 */
function gradients(image, columns, rows, f) {
  const { width, height, data } = image;
  const at = (x, y, c) => data[(y * width + x) * 3 + c];
  const kind = (offset, tileBorders) =>
    tileBorders.has(offset) ? 'border' : offset % f === 0 ? 'cellBoundary' : 'inside';
  const empty = () => ({ border: [0, 0], cellBoundary: [0, 0], inside: [0, 0] });
  const horizontal = empty();
  const columnBorders = new Set(columns);
  for (let y = 0; y < height; y++)
    for (let x = 1; x < width; x++) {
      const slot = horizontal[kind(x, columnBorders)];
      for (let c = 0; c < 3; c++) slot[0] += Math.abs(at(x, y, c) - at(x - 1, y, c));
      slot[1] += 3;
    }
  const vertical = empty();
  const rowBorders = new Set(rows);
  for (let y = 1; y < height; y++) {
    const slot = vertical[kind(y, rowBorders)];
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) slot[0] += Math.abs(at(x, y, c) - at(x, y - 1, c));
    slot[1] += 3 * width;
  }
  const mean = ([sum, n]) => (n === 0 ? NaN : sum / n);
  const means = (g) => ({
    border: mean(g.border),
    cellBoundary: mean(g.cellBoundary),
    inside: mean(g.inside),
  });
  return { horizontal: means(horizontal), vertical: means(vertical) };
}

const runtime = createNodeRuntime({ devices: ['cpu'] });
const ae = await loadAutoencoder(model, { runtime });
const f = ae.spatialCompressionRatio;
const results = [];
for (const photo of photos) {
  const image = fitToMultiple(await readImage(photo), f, 'crop').image;
  const latent = await ae.encode(imageToTensor(image), { tiling: 'never' });
  const whole = await ae.decode(latent, { tiling: 'never' });
  const [wholeImage] = tensorToImages(whole);
  const [, , h, w] = latent.shape;
  for (const geometry of geometries) {
    const tiled = await ae.decode(latent, { tiling: { ...geometry, style: 'aligned' } });
    const [tiledImage] = tensorToImages(tiled);
    const columns = borders(w, f, geometry);
    const rows = borders(h, f, geometry);
    if (columns.tiles === 1 && rows.tiles === 1) {
      console.log(`${relative(process.cwd(), photo)}: fits one ${geometry.tileSize}-px tile, not tiled`);
      continue;
    }
    let maxAbs = 0;
    for (let i = 0; i < tiled.data.length; i++)
      maxAbs = Math.max(maxAbs, Math.abs(tiled.data[i] - whole.data[i]));
    let maxLevels = 0;
    for (let i = 0; i < tiledImage.data.length; i++)
      maxLevels = Math.max(maxLevels, Math.abs(tiledImage.data[i] - wholeImage.data[i]));
    const row = {
      photo: relative(process.cwd(), photo),
      size: `${image.width}x${image.height}`,
      tileSize: geometry.tileSize,
      overlap: geometry.overlap,
      grid: `${rows.tiles}x${columns.tiles}`,
      columnBorders: columns.positions,
      rowBorders: rows.positions,
      tiled: gradients(tiledImage, columns.positions, rows.positions, f),
      untiled: gradients(wholeImage, columns.positions, rows.positions, f),
      maxAbsDiff: maxAbs,
      maxAbsDiffLevels: maxLevels,
    };
    results.push(row);
    const num = (v) => (Number.isNaN(v) ? '–' : v.toFixed(2));
    const axis = (a) => `${num(a.border)} / ${num(a.cellBoundary)} / ${num(a.inside)}`;
    const fmt = (g) => `h ${axis(g.horizontal)}, v ${axis(g.vertical)}`;
    console.log(
      `${row.photo} ${row.size}, tiles ${geometry.tileSize}/${geometry.overlap} (${row.grid}): ` +
        `gradient at tile borders / other ${f}-px cell boundaries / elsewhere: tiled ${fmt(row.tiled)}; untiled ${fmt(row.untiled)}; ` +
        `max |tiled − untiled| ${maxAbs.toFixed(4)} (${maxLevels} levels)`,
    );
  }
}
if (jsonOut)
  writeFileSync(jsonOut, `${JSON.stringify({ model: relative(process.cwd(), model), results }, null, 2)}\n`);
await ae.dispose();
await runtime.dispose();
