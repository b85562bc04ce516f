// Copies a trained checkpoint folder into this package: config.json as is, and the weights as fp16
// safetensors (floating tensors cast with round-to-nearest-even; integer tensors such as
// num_batches_tracked unchanged; every key kept).   usage: node scripts/export-fp16.mjs CHECKPOINT_DIR
import { copyFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { float32ArrayToFloat16, parseSafetensors, toFloat32 } from '@dcae/core';
import { writeSafetensorsFile } from '@dcae/core/node';

const [checkpoint] = process.argv.slice(2);
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = parseSafetensors(readFileSync(join(checkpoint, 'diffusion_pytorch_model.safetensors')));
const out = new Map();
for (const key of file.header.tensors.keys()) {
  const t = file.tensor(key);
  out.set(
    key,
    t.dtype === 'float32' || t.dtype === 'bfloat16'
      ? { dtype: 'float16', shape: t.shape, data: float32ArrayToFloat16(toFloat32(t).data) }
      : t,
  );
}
copyFileSync(join(checkpoint, 'config.json'), join(pkg, 'config.json'));
await writeSafetensorsFile(join(pkg, 'diffusion_pytorch_model.safetensors'), out, {
  overwrite: true,
  metadata: { format: 'pt' },
});
console.log(`wrote ${out.size} tensors (fp16) to ${pkg}`);
