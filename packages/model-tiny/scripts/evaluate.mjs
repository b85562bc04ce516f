// Held-out evaluation of a DC-AE checkpoint folder against the bicubic yardstick (README.md,
// "Metrics"): each held-out photo's centre square resized to S×S (the trainer's evaluation crop),
// reconstructed by the model; and the same crop resized down to round(S / √96) px per side with
// bicubic and back up, which keeps about as many values as the f32c32 latent (S²/32). PSNR and SSIM
// as `dcae reconstruct` computes them (uint8, efficientvit's evaluator).
//   usage: node scripts/evaluate.mjs MODEL_DIR HELDOUT_DIR [OUT.json]
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { imageToTensor, psnr, ssim, tensorToImages } from '@dcae/autoencoder';
import { loadAutoencoder, readImage } from '@dcae/autoencoder/node';
import { evalRegion, resampleRegion } from '@dcae/train';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';

const [model, heldout, outPath] = process.argv.slice(2);
const runtime = createNodeRuntime({ devices: ['cpu'] });
const ae = await loadAutoencoder(model, { runtime });
const files = readdirSync(heldout)
  .filter((f) => /\.(png|jpe?g|webp)$/i.test(f))
  .sort();
const results = {};
for (const size of [256, 512]) {
  const small = Math.round(size / Math.sqrt(96));
  const rows = [];
  for (const file of files) {
    const image = await readImage(join(heldout, file));
    const crop = resampleRegion(image, evalRegion(image.width, image.height, size));
    const [recon] = tensorToImages(await ae.decode(await ae.encode(imageToTensor(crop))));
    const raw = { raw: { width: size, height: size, channels: 3 } };
    const down = await sharp(crop.data, raw).resize(small, small, { kernel: 'cubic' }).raw().toBuffer();
    const up = await sharp(down, { raw: { width: small, height: small, channels: 3 } })
      .resize(size, size, { kernel: 'cubic' })
      .raw()
      .toBuffer();
    const bicubic = { width: size, height: size, channels: 3, data: new Uint8Array(up) };
    rows.push({
      file,
      model: { psnr: psnr(crop, recon), ssim: ssim(crop, recon) },
      bicubic: { psnr: psnr(crop, bicubic), ssim: ssim(crop, bicubic) },
    });
  }
  const mean = (pick) => rows.reduce((a, r) => a + pick(r), 0) / rows.length;
  results[size] = {
    bicubicSide: small,
    latentValues: (size / 32) ** 2 * 32,
    bicubicValues: small * small * 3,
    mean: {
      model: { psnr: mean((r) => r.model.psnr), ssim: mean((r) => r.model.ssim) },
      bicubic: { psnr: mean((r) => r.bicubic.psnr), ssim: mean((r) => r.bicubic.ssim) },
    },
    images: rows,
  };
  console.log(
    `${size}²: model ${results[size].mean.model.psnr.toFixed(2)} dB / SSIM ${results[size].mean.model.ssim.toFixed(4)}; ` +
      `bicubic ${small}² ${results[size].mean.bicubic.psnr.toFixed(2)} dB / SSIM ${results[size].mean.bicubic.ssim.toFixed(4)}`,
  );
  for (const r of rows)
    console.log(
      `  ${r.file}: model ${r.model.psnr.toFixed(2)} dB ${r.model.ssim.toFixed(4)}; bicubic ${r.bicubic.psnr.toFixed(2)} dB ${r.bicubic.ssim.toFixed(4)}`,
    );
}
if (outPath) writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);
await ae.dispose();
await runtime.dispose();
