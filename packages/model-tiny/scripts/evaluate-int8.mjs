// int8 vs float32 on the trained model (docs/quantization.md): calibrates on a few TRAINING photos,
// then reconstructs every held-out photo's centre square at S×S with both, side by side in one
// run, and reports PSNR/SSIM of each against the photo, the int8-vs-fp32 latent error and the
// encode/decode times (median of REPEAT runs, interleaved so that load changes hit both alike).
//   usage: node scripts/evaluate-int8.mjs MODEL_DIR TRAIN_DIR HELDOUT_DIR [OUT.json] [REPEAT]
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calibrateAutoencoder, imageToTensor, psnr, ssim, tensorToImages } from '@dcae/autoencoder';
import { openAutoencoder, readImage } from '@dcae/autoencoder/node';
import { directoryModelFiles } from '@dcae/hub/node';
import { evalRegion, resampleRegion } from '@dcae/train';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';

const [model, trainDir, heldout, outPath, repeatArg] = process.argv.slice(2);
const REPEAT = Number(repeatArg ?? 3);
const runtime = createNodeRuntime({ devices: ['cpu'] });
const photos = (dir) =>
  readdirSync(dir)
    .filter((f) => /\.(png|jpe?g|webp)$/i.test(f))
    .sort();
const crop = async (path, size) => {
  const image = await readImage(path);
  return resampleRegion(image, evalRegion(image.width, image.height, size));
};
// Every 4th training photo, centre square at 256²: the calibration set (never held-out photos).
const calibrationFiles = photos(trainDir).filter((_, i) => i % 4 === 0);
const images = [];
for (const f of calibrationFiles) images.push(imageToTensor(await crop(join(trainDir, f), 256)));
const files = directoryModelFiles(model);
const spec = await calibrateAutoencoder(files, { runtime, images, imageNames: calibrationFiles });
const fp32 = await openAutoencoder(model, { runtime });
const int8 = await openAutoencoder(model, { runtime, dtype: 'int8', quantization: spec });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = async (fn) => {
  const t = performance.now();
  const out = await fn();
  return [out, performance.now() - t];
};
const results = { calibration: calibrationFiles, repeat: REPEAT, sizes: {} };
for (const size of [256, 512]) {
  const rows = [];
  const times = { fp32: { encode: [], decode: [] }, int8: { encode: [], decode: [] } };
  for (const file of photos(heldout)) {
    const image = await crop(join(heldout, file), size);
    const x = imageToTensor(image);
    const out = {};
    for (let r = 0; r < REPEAT; r++) {
      for (const [name, ae] of [
        ['fp32', fp32],
        ['int8', int8],
      ]) {
        const [latent, te] = await time(() => ae.encode(x));
        const [y, td] = await time(() => ae.decode(latent));
        times[name].encode.push(te);
        times[name].decode.push(td);
        out[name] = { latent, y };
      }
    }
    const a = out.fp32.latent.data;
    const b = out.int8.latent.data;
    let maxErr = 0;
    let sumErr = 0;
    let maxRef = 0;
    for (let i = 0; i < a.length; i++) {
      const e = Math.abs(a[i] - b[i]);
      maxErr = Math.max(maxErr, e);
      sumErr += e;
      maxRef = Math.max(maxRef, Math.abs(a[i]));
    }
    const [r32] = tensorToImages(out.fp32.y);
    const [r8] = tensorToImages(out.int8.y);
    rows.push({
      file,
      fp32: { psnr: psnr(image, r32), ssim: ssim(image, r32) },
      int8: { psnr: psnr(image, r8), ssim: ssim(image, r8) },
      latent: { maxAbsError: maxErr, meanAbsError: sumErr / a.length, maxAbsFp32: maxRef },
    });
  }
  const mean = (pick) => rows.reduce((s, r) => s + pick(r), 0) / rows.length;
  const ms = (name, part) => median(times[name][part]);
  const summary = {
    fp32: { psnr: mean((r) => r.fp32.psnr), ssim: mean((r) => r.fp32.ssim) },
    int8: { psnr: mean((r) => r.int8.psnr), ssim: mean((r) => r.int8.ssim) },
    latentMaxAbsError: Math.max(...rows.map((r) => r.latent.maxAbsError)),
    latentMeanAbsError: mean((r) => r.latent.meanAbsError),
    medianMs: {
      fp32: { encode: ms('fp32', 'encode'), decode: ms('fp32', 'decode') },
      int8: { encode: ms('int8', 'encode'), decode: ms('int8', 'decode') },
    },
  };
  summary.speedup = {
    encode: summary.medianMs.fp32.encode / summary.medianMs.int8.encode,
    decode: summary.medianMs.fp32.decode / summary.medianMs.int8.decode,
  };
  results.sizes[size] = { summary, images: rows };
  console.log(
    `${size}²: fp32 ${summary.fp32.psnr.toFixed(2)} dB, int8 ${summary.int8.psnr.toFixed(2)} dB ` +
      `(Δ ${(summary.int8.psnr - summary.fp32.psnr).toFixed(2)} dB); latent max|Δ| ${summary.latentMaxAbsError.toFixed(4)}, ` +
      `mean|Δ| ${summary.latentMeanAbsError.toFixed(5)}; encode ${summary.speedup.encode.toFixed(2)}×, decode ${summary.speedup.decode.toFixed(2)}× ` +
      `(fp32 ${summary.medianMs.fp32.encode.toFixed(0)}/${summary.medianMs.fp32.decode.toFixed(0)} ms, int8 ${summary.medianMs.int8.encode.toFixed(0)}/${summary.medianMs.int8.decode.toFixed(0)} ms)`,
  );
}
await fp32.dispose?.();
await int8.dispose?.();
if (outPath) writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);
