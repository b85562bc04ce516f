import type { HostTensor } from '@dcae/core';
import { DcaeError, formatShape } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import { Emit, grad } from '../autodiff/grad.js';
import { buildDcAeForward, matchTrainable } from '../ir/dcae.js';
import { buildLoss } from '../losses/index.js';
import { checkOptimizerSpec, emitOptimizer } from '../optim/index.js';
import type { StateSlot } from '../optim/index.js';
import type { IrGraph, IrNode } from '../ir/graph.js';
import type { OptimizerState, StepResult, TrainStepOptions, TrainStepRunner } from './types.js';

/**
 * `createTrainStepRunner`: one ONNX training-step graph (forward, loss, backward, optimizer) run by a
 * plain inference session. Weights and optimizer state live on the host as float32 tensors and are
 * fed each step; the session returns the new ones (docs/training.md, "The step runner").
 */

export interface TrainGraphStats {
  readonly forwardNodes: number;
  readonly lossNodes: number;
  readonly backwardNodes: number;
  readonly optimizerNodes: number;
  readonly modelBytes: number;
  /** Forward nodes that emitted backward nodes. */
  readonly differentiatedNodes: number;
  readonly buildMs: number;
  readonly sessionMs: number;
}

export interface TrainStepRunnerWithStats extends TrainStepRunner {
  readonly stats: TrainGraphStats;
}

const STEP_OUTPUTS = { loss: 'loss', gradNorm: 'grad_norm' } as const;

function checkBatch(batch: HostTensor, expected: readonly number[], what: string): void {
  if (batch.dtype !== 'float32')
    throw new DcaeError('DTYPE_UNSUPPORTED', `${what} is ${batch.dtype}; expected float32 in [-1, 1].`);
  if (formatShape(batch.shape) !== formatShape(expected))
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${what} has shape ${formatShape(batch.shape)}; the step graph was built for ${formatShape(expected)} (batch, channels, height, width). Create another runner for another size.`,
      { detail: { expected, actual: batch.shape } },
    );
}

/** The training-step graph of `options`, before serialisation (also what the tests and the bench inspect). */
export interface TrainStepGraph {
  readonly g: IrGraph;
  readonly model: OnnxModel;
  readonly trainableKeys: readonly string[];
  readonly frozenKeys: readonly string[];
  readonly termNames: readonly string[];
  /** IR value per model output name. */
  readonly outputs: ReadonlyMap<string, string>;
  /** Flat optimizer state inputs (e.g. `exp_avg`), each a vector over every trainable tensor. */
  readonly stateInputs: readonly string[];
  readonly stateLayout: readonly StateSlot[];
  readonly stateLength: number;
  /** Forward nodes that emitted backward nodes. */
  readonly differentiated: readonly IrNode[];
  readonly stats: Omit<TrainGraphStats, 'modelBytes' | 'buildMs' | 'sessionMs'>;
}

export function buildTrainStep(options: TrainStepOptions): TrainStepGraph {
  checkOptimizerSpec(options.optimizer);
  const { config } = options;
  const fwd = buildDcAeForward(config, options.weights, {
    batch: options.batch,
    height: options.height,
    width: options.width,
  });
  const { g } = fwd;
  const statistics = new Set(fwd.statisticKeys);
  const candidates = fwd.usedKeys.filter((k) => !statistics.has(k));
  const trainableKeys = matchTrainable(candidates, options.trainable);
  const trainable = new Set(trainableKeys);
  const frozenKeys = [...options.weights.keys()].filter((k) => !trainable.has(k));
  const forwardNodes = g.nodes.length;

  const e = new Emit(g);
  const loss = buildLoss(
    e,
    fwd.output,
    fwd.input,
    options.loss,
    options.perceptualWeights ? { perceptualWeights: options.perceptualWeights } : {},
  );
  const lossNodes = g.nodes.length - forwardNodes;
  const { grads, backwardNodes, differentiated } = grad(g, loss.total, trainableKeys);
  const beforeOpt = g.nodes.length;
  const opt = emitOptimizer(
    e,
    options.optimizer,
    trainableKeys.map((key) => ({ key, weight: key, grad: grads.get(key)! })),
  );
  const optimizerNodes = g.nodes.length - beforeOpt;
  const termNames = [...loss.terms.keys()];
  const outputs: string[] = [loss.total, ...termNames.map((t) => loss.terms.get(t)!), opt.gradNorm];
  const outputNames: string[] = [
    STEP_OUTPUTS.loss,
    ...termNames.map((t) => `term.${t}`),
    STEP_OUTPUTS.gradNorm,
  ];
  for (const key of trainableKeys) {
    outputs.push(opt.newWeights.get(key)!);
    outputNames.push(`new.${key}`);
  }
  for (const name of opt.stateInputs) {
    outputs.push(opt.newState.get(name)!);
    outputNames.push(`new.${name}`);
  }
  const model = g.toModel({
    name: 'dcae_train_step',
    outputs,
    outputNames,
    inputWeights: trainable,
    metadata: { trainable: String(trainableKeys.length) },
  });
  return {
    g,
    model,
    trainableKeys,
    frozenKeys,
    termNames,
    outputs: new Map(outputNames.map((n, i) => [n, outputs[i]!])),
    stateInputs: opt.stateInputs,
    stateLayout: opt.layout,
    stateLength: opt.stateLength,
    differentiated,
    stats: {
      forwardNodes,
      lossNodes,
      backwardNodes,
      optimizerNodes,
      differentiatedNodes: differentiated.length,
    },
  };
}

/** Host-side AdamW bias corrections for step t (1-based), fed as float32 scalars. */
export function biasCorrections(
  betas: readonly [number, number],
  t: number,
): { bias_correction1: number; bias_correction2: number } {
  return { bias_correction1: 1 - betas[0] ** t, bias_correction2: 1 - betas[1] ** t };
}

export async function createTrainStepRunner(
  runtime: RuntimeV1,
  options: TrainStepOptions,
): Promise<TrainStepRunnerWithStats> {
  const started = performance.now();
  const { config } = options;
  const built = buildTrainStep(options);
  const { trainableKeys, frozenKeys, termNames } = built;
  const bytes = serializeModel(built.model);
  const buildMs = performance.now() - started;
  const session = await runtime.createSession(bytes);
  const sessionMs = performance.now() - started - buildMs;
  const { stateInputs, stateLayout, stateLength } = built;

  const current = new Map<string, HostTensor>(options.weights);
  // Optimizer state: one flat vector per state input; per tensor `<name>.<key>` outside the runner.
  let state = new Map<string, Float32Array>(stateInputs.map((name) => [name, new Float32Array(stateLength)]));
  let stepCount = 0;
  const [b1, b2] = options.optimizer.betas ?? [0.9, 0.999];
  const batchShape = [options.batch, config.inChannels, options.height, options.width];
  const reconstructCache = new Map<
    string,
    { session: SessionV1; output: string; inputs: readonly string[] }
  >();
  let disposed = false;
  const alive = (): void => {
    if (disposed)
      throw new DcaeError('SESSION_DISPOSED', 'This train-step runner was disposed; create a new one.');
  };

  const runner: TrainStepRunnerWithStats = {
    trainableKeys,
    frozenKeys,
    stats: { ...built.stats, modelBytes: bytes.byteLength, buildMs, sessionMs },
    async step(batch, { lr, signal }): Promise<StepResult> {
      alive();
      checkBatch(batch, batchShape, 'The training batch');
      if (!Number.isFinite(lr) || lr < 0)
        throw new DcaeError('INVALID_ARGUMENT', `Learning rate ${lr} is not a finite number ≥ 0.`);
      const t = stepCount + 1;
      const scalar = (v: number): HostTensor => ({ dtype: 'float32', shape: [], data: Float32Array.of(v) });
      const feeds: Record<string, HostTensor> = { sample: batch, lr: scalar(lr) };
      if (options.optimizer.kind === 'adamw') {
        const bc = biasCorrections([b1, b2], t);
        feeds.bias_correction1 = scalar(bc.bias_correction1);
        feeds.bias_correction2 = scalar(bc.bias_correction2);
      }
      for (const key of trainableKeys) feeds[key] = current.get(key)!;
      for (const [name, data] of state) feeds[name] = { dtype: 'float32', shape: [stateLength], data };
      const out = await session.run(feeds, signal ? { signal } : {});
      const value = (name: string): number => (out[name]!.data as Float32Array)[0]!;
      const total = value(STEP_OUTPUTS.loss);
      const gradNorm = value(STEP_OUTPUTS.gradNorm);
      if (!Number.isFinite(total) || !Number.isFinite(gradNorm))
        throw new DcaeError(
          'NON_FINITE_OUTPUT',
          `Training step ${t}: the loss is ${total} and the gradient norm ${gradNorm}; the weights were not updated. Lower the learning rate or enable clipGradNorm.`,
          { detail: { step: t, loss: total, gradNorm } },
        );
      for (const key of trainableKeys) current.set(key, out[`new.${key}`]!);
      state = new Map([...state.keys()].map((name) => [name, out[`new.${name}`]!.data as Float32Array]));
      stepCount = t;
      const terms: Record<string, number> = {};
      for (const name of termNames) terms[name] = value(`term.${name}`);
      return { loss: total, terms, gradNorm };
    },
    weights: () => new Map(current),
    optimizerState(): OptimizerState {
      const tensors = new Map<string, HostTensor>();
      for (const [name, flat] of state)
        for (const slot of stateLayout)
          tensors.set(`${name}.${slot.key}`, {
            dtype: 'float32',
            shape: slot.shape,
            data: flat.slice(slot.offset, slot.offset + slot.size),
          });
      return { step: stepCount, tensors };
    },
    restoreOptimizerState(restored: OptimizerState): void {
      alive();
      if (!Number.isInteger(restored.step) || restored.step < 0)
        throw new DcaeError(
          'INVALID_ARGUMENT',
          `Optimizer state step ${restored.step} is not an integer ≥ 0.`,
        );
      const problems: string[] = [];
      const expected = new Set<string>();
      const next = new Map<string, Float32Array>();
      for (const name of stateInputs) {
        const flat = new Float32Array(stateLength);
        for (const slot of stateLayout) {
          const label = `${name}.${slot.key}`;
          expected.add(label);
          const t = restored.tensors.get(label);
          if (!t) problems.push(`missing ${label} ${formatShape(slot.shape)}`);
          else if (t.dtype !== 'float32' || formatShape(t.shape) !== formatShape(slot.shape))
            problems.push(
              `${label}: expected float32 ${formatShape(slot.shape)}, got ${t.dtype} ${formatShape(t.shape)}`,
            );
          else flat.set(t.data as Float32Array, slot.offset);
        }
        next.set(name, flat);
      }
      for (const name of restored.tensors.keys())
        if (!expected.has(name)) problems.push(`unexpected ${name}`);
      if (problems.length)
        throw new DcaeError(
          'WEIGHTS_MISMATCH',
          `The optimizer state does not match this runner (${options.optimizer.kind}, ${trainableKeys.length} trainable tensors): ${problems.slice(0, 20).join('; ')}. Resume with the same --trainable globs and optimizer.`,
          { detail: { problems } },
        );
      state = next;
      stepCount = restored.step;
    },
    async reconstruct(batch: HostTensor): Promise<HostTensor> {
      alive();
      if (batch.shape.length !== 4)
        throw new DcaeError(
          'SHAPE_MISMATCH',
          `reconstruct() takes [B, ${config.inChannels}, H, W]; got ${formatShape(batch.shape)}.`,
        );
      checkBatch(
        batch,
        [batch.shape[0]!, config.inChannels, batch.shape[2]!, batch.shape[3]!],
        'The batch to reconstruct',
      );
      const key = batch.shape.join('x');
      let entry = reconstructCache.get(key);
      if (!entry) {
        const f = buildDcAeForward(config, options.weights, {
          batch: batch.shape[0]!,
          height: batch.shape[2]!,
          width: batch.shape[3]!,
        });
        const used = new Set(f.usedKeys);
        const inputs = trainableKeys.filter((k) => used.has(k));
        const m = f.g.toModel({
          name: 'dcae_reconstruct',
          outputs: [f.output],
          outputNames: ['reconstruction'],
          inputWeights: new Set(inputs),
        });
        entry = { session: await runtime.createSession(serializeModel(m)), output: 'reconstruction', inputs };
        // Keep at most a few shapes (eval and preview sizes).
        if (reconstructCache.size >= 4) {
          const [oldKey, old] = reconstructCache.entries().next().value!;
          reconstructCache.delete(oldKey);
          await old.session.dispose();
        }
        reconstructCache.set(key, entry);
      }
      const feeds: Record<string, HostTensor> = { sample: batch };
      for (const k of entry.inputs) feeds[k] = current.get(k)!;
      const out = await entry.session.run(feeds);
      return out[entry.output]!;
    },
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      await session.dispose();
      for (const entry of reconstructCache.values()) await entry.session.dispose();
      reconstructCache.clear();
    },
  };
  return runner;
}
