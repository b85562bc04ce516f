import { formatShape } from '@dcae/core';
import { fittedSizes } from '@dcae/autoencoder';
import type { Autoencoder, DcAeStagesConfig } from '@dcae/autoencoder';
import { inspectOnnxFile, listNodeDevices } from '@dcae/runtime-adapters/node';
import { openModel } from '../model.js';
import type { CommonOptions } from '../options.js';
import { reporterFor } from './shared.js';
import type { CommandContext } from './shared.js';

export interface InfoOptions extends CommonOptions {
  readonly size?: { readonly height: number; readonly width: number };
}

const count = (n: number) => n.toLocaleString('en-US');

/** One line per stage: block type × depth, width, and the multi-scale kernels of attention stages. */
function stageLines(stages: DcAeStagesConfig): string[] {
  return stages.blockTypes.map((type, i) => {
    const scales = stages.qkvMultiscales[i] ?? [];
    const attention =
      type === 'EfficientViTBlock' && scales.length > 0 ? `, multiscale ${scales.join('/')}` : '';
    return `    ${i}: ${type} × ${stages.layersPerBlock[i]}, ${stages.blockOutChannels[i]} channels${attention}`;
  });
}

function summaryText(ae: Autoencoder): string[] {
  const s = ae.summary();
  if (ae.architecture === 'sd-vae')
    return [
      `model      ${s.name} (AutoencoderKL, the SD-VAE baseline: f${s.spatialCompressionRatio}c${s.latentChannels}, ${count(s.parameters.total)} parameters, scaling factor ${s.scalingFactor})`,
    ];
  if (ae.architecture === 'taesana')
    return [
      `model      ${s.name} (TAESANA, tiny preview autoencoder for Sana's f32c32 latents; parts: ${ae.parts.join(', ')})`,
      `parameters ${count(s.parameters.total)} (encoder ${count(s.parameters.encoder)}, decoder ${count(s.parameters.decoder)})`,
      `tensors    ${s.keys.checkpoint} in the .pth files (encoder ${s.keys.encoder}, decoder ${s.keys.decoder})`,
      `latent     ${s.latentChannels} channels, spatial compression ${s.spatialCompressionRatio}; latents are unscaled DC-AE f32c32-sana latents (TAESANA works on them × ${ae.config.latentScale} inside)`,
    ];
  const { config } = ae;
  return [
    `model      ${s.name} (${s.format} checkpoint format)`,
    `parameters ${count(s.parameters.total)} (encoder ${count(s.parameters.encoder)}, decoder ${count(s.parameters.decoder)})`,
    `tensors    ${s.keys.checkpoint} in the checkpoint (encoder reads ${s.keys.encoder}, decoder ${s.keys.decoder})`,
    `latent     ${s.latentChannels} channels, spatial compression ${s.spatialCompressionRatio}, scaling factor ${s.scalingFactor ?? 'not documented'}`,
    `attention  head dim ${config.attentionHeadDim}`,
    `encoder    downsample ${config.encoder.downsample}, out shortcut ${config.encoder.outShortcut ? 'yes' : 'no'}`,
    ...stageLines(config.encoder),
    `decoder    upsample ${config.decoder.upsample}, in shortcut ${config.decoder.inShortcut ? 'yes' : 'no'}`,
    ...stageLines(config.decoder),
  ];
}

/**
 * `dcae info --model <file.onnx>`: a third-party ONNX model, checked as `loadOnnxFile()` would
 * before onnxruntime sees it (size, protobuf, external data inside its folder, dims, op allow-list),
 * then described: opsets, inputs and outputs, op counts, initializer bytes, external files.
 */
async function runOnnxInfo(path: string, options: InfoOptions, context: CommandContext): Promise<void> {
  const reporter = reporterFor(options, context);
  const { inspection: m, externalFiles } = await inspectOnnxFile(path);
  const ops = new Map<string, number>();
  for (const node of m.nodes) {
    const op = node.domain ? `${node.domain}.${node.opType}` : node.opType;
    ops.set(op, (ops.get(op) ?? 0) + 1);
  }
  const opCounts = Object.fromEntries([...ops].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  let inlineBytes = 0;
  let externalBytes = 0;
  for (const t of m.tensors) {
    if (t.storage.kind === 'external') externalBytes += t.storage.length ?? 0;
    else if (t.storage.field === 'raw_data') inlineBytes += t.storage.count;
  }
  const dims = (d: readonly (number | string | null)[] | undefined) =>
    d === undefined ? '[?]' : formatShape(d.map((x) => x ?? '?'));
  const opsets = m.opsetImports.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  reporter.result(
    [
      `model      ${path} (ONNX, ${count(m.byteLength)} bytes, ir ${m.irVersion ?? '?'}, producer ${m.producer || '?'})`,
      `opsets     ${opsets || 'none'}`,
      ...m.inputs.map((v) => `input      ${v.name}: ${v.dtype} ${dims(v.dims)}`),
      ...m.outputs.map((v) => `output     ${v.name}: ${v.dtype} ${dims(v.dims)}`),
      `nodes      ${count(m.nodes.length)}: ${[...ops].map(([op, n]) => `${op} × ${n}`).join(', ')}`,
      `tensors    ${count(m.tensors.length)} (${count(inlineBytes)} bytes inline, ${count(externalBytes)} bytes external)`,
      ...externalFiles.map((f) => `external   ${f.location} (${count(f.size ?? 0)} bytes)`),
      'checks     passed (size, protobuf, external data paths and ranges, data sizes, dims, op allow-list)',
    ].join('\n'),
    {
      command: 'info',
      model: path,
      format: 'onnx',
      bytes: m.byteLength,
      irVersion: m.irVersion ?? null,
      producer: m.producer,
      opsets: m.opsetImports,
      inputs: m.inputs,
      outputs: m.outputs,
      nodes: m.nodes.length,
      opCounts,
      tensors: m.tensors.length,
      initializerBytes: { inline: inlineBytes, external: externalBytes },
      externalFiles,
      usesFloat16: m.usesFloat16,
    },
  );
}

/**
 * `dcae info`: architecture summary, parameter counts, the latent shape for `--size`, and the
 * devices; for a `.onnx` file, its checked description (see runOnnxInfo).
 */
export async function runInfo(options: InfoOptions, { io, signal }: CommandContext): Promise<void> {
  if (options.model.toLowerCase().endsWith('.onnx'))
    return runOnnxInfo(options.model, options, { io, signal });
  const reporter = reporterFor(options, { io, signal });
  const devices = listNodeDevices();
  const model = await openModel(options, reporter, signal, 'info');
  try {
    const ae = model.autoencoder;
    const f = ae.spatialCompressionRatio;
    const latentFor = (height: number, width: number) => [1, ...ae.latentShape(height, width)];
    let sizeText: string[] = [];
    let sizeJson: Record<string, unknown> | undefined;
    if (options.size) {
      const { height, width } = options.size;
      // Sizes are width×height, as everywhere dcae prints them; latent shapes are [N, C, h, w].
      if (height % f === 0 && width % f === 0) {
        sizeText = [`size       ${width}x${height} → latent ${formatShape(latentFor(height, width))}`];
        sizeJson = { width, height, latentShape: latentFor(height, width) };
      } else {
        const { crop, pad } = fittedSizes(width, height, f);
        sizeText = [
          `size       ${width}x${height} is not a multiple of ${f}:`,
          ...(crop
            ? [
                `    --fit crop → ${crop.width}x${crop.height}, latent ${formatShape(latentFor(crop.height, crop.width))}`,
              ]
            : []),
          `    --fit pad  → ${pad.width}x${pad.height}, latent ${formatShape(latentFor(pad.height, pad.width))}`,
        ];
        sizeJson = {
          width,
          height,
          ...(crop ? { crop: { ...crop, latentShape: latentFor(crop.height, crop.width) } } : {}),
          pad: { ...pad, latentShape: latentFor(pad.height, pad.width) },
        };
      }
    }
    reporter.result(
      [
        ...summaryText(ae),
        ...sizeText,
        `runtime    ${model.runtime.name}`,
        'devices',
        ...devices.map(
          (d) => `    ${d.device.padEnd(7)} ${d.available ? 'available  ' : 'unavailable'}  ${d.reason}`,
        ),
      ].join('\n'),
      {
        command: 'info',
        model: options.model,
        ...ae.summary(),
        config: ae.config,
        ...(sizeJson ? { size: sizeJson } : {}),
        runtime: model.runtime.name,
        devices,
      },
    );
  } finally {
    await model.close();
  }
}
