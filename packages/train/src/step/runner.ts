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
import type { DiscriminatorSpec } from '../gan/discriminator.js';
import {
  checkDiscriminatorInput,
  checkDiscriminatorWeights,
  discriminatorForward,
  hingeGeneratorTerm,
  initDiscriminatorWeights,
  resolveDiscriminatorSpec,
} from '../gan/discriminator.js';
import { buildDiscriminatorStep, DISCRIMINATOR_OUTPUTS } from '../gan/step.js';
import type {
  DiscriminatorState,
  DiscriminatorStepResult,
  OptimizerState,
  StepResult,
  TrainStepOptions,
  TrainStepRunner,
} from './types.js';

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

const STEP_OUTPUTS = { loss: 'loss', gradNorm: 'grad_norm', reconstruction: 'reconstruction' } as const;
/** Scalar input of the generator step: the `gan` weight this step (0 before `startStep`). */
const GAN_WEIGHT_INPUT = 'gan_weight';
/** Graph-input prefix of the (frozen, fed) discriminator weights in the generator step. */
const DISCRIMINATOR_PREFIX = 'discriminator.';

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
  /**
   * With a `gan` term: the discriminator (spec with defaults, the weights the graph was built with)
   * and the names of its fed weight inputs (`discriminator.<key>`). The generator step then also
   * takes the scalar `gan_weight` and outputs `reconstruction`.
   */
  readonly gan?: {
    readonly weight: number;
    readonly spec: DiscriminatorSpec;
    readonly weights: ReadonlyMap<string, HostTensor>;
    readonly inputs: ReadonlyMap<string, string>;
  };
}

/** The discriminator spec and weights of `options` when its loss has a `gan` term. */
function discriminatorOf(
  options: TrainStepOptions,
): { weight: number; spec: DiscriminatorSpec; weights: ReadonlyMap<string, HostTensor> } | undefined {
  const weight = options.loss.gan ?? 0;
  if (!(weight > 0)) return undefined;
  const spec = resolveDiscriminatorSpec(options.discriminator?.spec);
  checkDiscriminatorInput(spec, options.height, options.width);
  const given = options.discriminator?.weights;
  if (given) checkDiscriminatorWeights(spec, options.config.inChannels, given);
  const weights =
    given ?? initDiscriminatorWeights(spec, options.config.inChannels, options.discriminator?.seed ?? 0);
  return { weight, spec, weights };
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
  const disc = discriminatorOf(options);
  const { gan: _gan, ...reconstructionTerms } = options.loss;
  void _gan;
  if (disc && !Object.values(reconstructionTerms).some((w) => w !== undefined && w > 0))
    throw new DcaeError(
      'INVALID_ARGUMENT',
      'The gan term needs at least one reconstruction term beside it (e.g. l1+gan:0.1): a GAN loss alone does not train an autoencoder.',
    );
  const loss = buildLoss(
    e,
    fwd.output,
    fwd.input,
    disc ? reconstructionTerms : options.loss,
    options.perceptualWeights ? { perceptualWeights: options.perceptualWeights } : {},
  );
  let total = loss.total;
  const terms = new Map(loss.terms);
  const discInputs = new Map<string, string>();
  if (disc) {
    // The generator side of the hinge GAN: −mean D(x̂) through the discriminator, whose weights are
    // fed inputs that are not differentiated (frozen in this graph), times the fed `gan_weight`.
    const logits = discriminatorForward(g, fwd.output, disc.spec, disc.weights, (key) => {
      const name = DISCRIMINATOR_PREFIX + key;
      discInputs.set(key, name);
      return name;
    });
    const term = hingeGeneratorTerm(e, logits);
    terms.set('gan', term);
    total = e.add(total, e.mul(g.addInput(GAN_WEIGHT_INPUT, 'float32', []), term));
  }
  const lossNodes = g.nodes.length - forwardNodes;
  const { grads, backwardNodes, differentiated } = grad(g, total, trainableKeys);
  const beforeOpt = g.nodes.length;
  const opt = emitOptimizer(
    e,
    options.optimizer,
    trainableKeys.map((key) => ({ key, weight: key, grad: grads.get(key)! })),
  );
  const optimizerNodes = g.nodes.length - beforeOpt;
  const termNames = [...terms.keys()];
  const outputs: string[] = [total, ...termNames.map((t) => terms.get(t)!), opt.gradNorm];
  const outputNames: string[] = [
    STEP_OUTPUTS.loss,
    ...termNames.map((t) => `term.${t}`),
    STEP_OUTPUTS.gradNorm,
  ];
  if (disc) {
    outputs.push(fwd.output);
    outputNames.push(STEP_OUTPUTS.reconstruction);
  }
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
    inputWeights: new Set([...trainable, ...discInputs.values()]),
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
    ...(disc ? { gan: { ...disc, inputs: discInputs } } : {}),
  };
}

/** Per-tensor view (`<state>.<key>`) of flat optimizer state vectors. */
function unflattenState(
  state: ReadonlyMap<string, Float32Array>,
  layout: readonly StateSlot[],
): Map<string, HostTensor> {
  const tensors = new Map<string, HostTensor>();
  for (const [name, flat] of state)
    for (const slot of layout)
      tensors.set(`${name}.${slot.key}`, {
        dtype: 'float32',
        shape: slot.shape,
        data: flat.slice(slot.offset, slot.offset + slot.size),
      });
  return tensors;
}

/** Flat state vectors from a per-tensor optimizer state; WEIGHTS_MISMATCH lists every difference. */
function flattenState(
  restored: OptimizerState,
  stateInputs: readonly string[],
  layout: readonly StateSlot[],
  length: number,
  what: string,
): Map<string, Float32Array> {
  if (!Number.isInteger(restored.step) || restored.step < 0)
    throw new DcaeError('INVALID_ARGUMENT', `Optimizer state step ${restored.step} is not an integer ≥ 0.`);
  const problems: string[] = [];
  const expected = new Set<string>();
  const next = new Map<string, Float32Array>();
  for (const name of stateInputs) {
    const flat = new Float32Array(length);
    for (const slot of layout) {
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
  for (const name of restored.tensors.keys()) if (!expected.has(name)) problems.push(`unexpected ${name}`);
  if (problems.length)
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `The optimizer state does not match ${what}: ${problems.slice(0, 20).join('; ')}. Resume with the same --trainable globs and optimizer.`,
      { detail: { problems } },
    );
  return next;
}

const scalar = (v: number): HostTensor => ({ dtype: 'float32', shape: [], data: Float32Array.of(v) });

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
  const { stateInputs, stateLayout, stateLength } = built;
  // The discriminator step (GAN term): its own graph, session, weights and AdamW state.
  const gan = built.gan;
  const dOptimizer = gan
    ? {
        kind: 'adamw' as const,
        betas: gan.spec.betas,
        ...(options.optimizer.eps !== undefined ? { eps: options.optimizer.eps } : {}),
        ...(options.optimizer.weightDecay !== undefined
          ? { weightDecay: options.optimizer.weightDecay }
          : {}),
      }
    : undefined;
  const dBuilt =
    gan && dOptimizer
      ? buildDiscriminatorStep({
          spec: gan.spec,
          weights: gan.weights,
          batch: options.batch,
          channels: config.inChannels,
          height: options.height,
          width: options.width,
          optimizer: dOptimizer,
        })
      : undefined;
  const dSession = dBuilt ? await runtime.createSession(serializeModel(dBuilt.model)) : undefined;
  let dWeights = new Map<string, HostTensor>(gan?.weights ?? []);
  let dState = new Map<string, Float32Array>(
    (dBuilt?.stateInputs ?? []).map((name) => [name, new Float32Array(dBuilt!.stateLength)]),
  );
  let dStepCount = 0;
  const sessionMs = performance.now() - started - buildMs;

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
      const feeds: Record<string, HostTensor> = { sample: batch, lr: scalar(lr) };
      if (options.optimizer.kind === 'adamw') {
        const bc = biasCorrections([b1, b2], t);
        feeds.bias_correction1 = scalar(bc.bias_correction1);
        feeds.bias_correction2 = scalar(bc.bias_correction2);
      }
      for (const key of trainableKeys) feeds[key] = current.get(key)!;
      for (const [name, data] of state) feeds[name] = { dtype: 'float32', shape: [stateLength], data };
      // The GAN term is on from step index `startStep` (0-based): before it, weight 0 and no D step.
      const ganOn = gan !== undefined && t > gan.spec.startStep;
      if (gan) {
        feeds[GAN_WEIGHT_INPUT] = scalar(ganOn ? gan.weight : 0);
        for (const [key, name] of gan.inputs) feeds[name] = dWeights.get(key)!;
      }
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
      // The discriminator step on the real batch and this step's reconstruction (made with the
      // generator weights before their update, a constant for D), with D's weights before theirs.
      let discriminator: DiscriminatorStepResult | undefined;
      let dOut: Record<string, HostTensor> | undefined;
      if (ganOn && dBuilt && dSession) {
        const dt = dStepCount + 1;
        const bc = biasCorrections(gan.spec.betas, dt);
        const dFeeds: Record<string, HostTensor> = {
          real: batch,
          fake: out[STEP_OUTPUTS.reconstruction]!,
          lr: scalar(lr),
          bias_correction1: scalar(bc.bias_correction1),
          bias_correction2: scalar(bc.bias_correction2),
        };
        for (const key of dBuilt.keys) dFeeds[key] = dWeights.get(key)!;
        for (const [name, data] of dState)
          dFeeds[name] = { dtype: 'float32', shape: [dBuilt.stateLength], data };
        dOut = await dSession.run(dFeeds, signal ? { signal } : {});
        const dValue = (name: string): number => (dOut![name]!.data as Float32Array)[0]!;
        discriminator = {
          loss: dValue(DISCRIMINATOR_OUTPUTS.loss),
          real: dValue(DISCRIMINATOR_OUTPUTS.real),
          fake: dValue(DISCRIMINATOR_OUTPUTS.fake),
          gradNorm: dValue(DISCRIMINATOR_OUTPUTS.gradNorm),
        };
        if (!Number.isFinite(discriminator.loss) || !Number.isFinite(discriminator.gradNorm))
          throw new DcaeError(
            'NON_FINITE_OUTPUT',
            `Training step ${t}: the discriminator loss is ${discriminator.loss} and its gradient norm ${discriminator.gradNorm}; no weights were updated. Lower the learning rate.`,
            { detail: { step: t, discriminatorLoss: discriminator.loss, gradNorm: discriminator.gradNorm } },
          );
      }
      for (const key of trainableKeys) current.set(key, out[`new.${key}`]!);
      state = new Map([...state.keys()].map((name) => [name, out[`new.${name}`]!.data as Float32Array]));
      stepCount = t;
      if (dOut && dBuilt) {
        const o = dOut;
        dWeights = new Map(dBuilt.keys.map((key) => [key, o[`new.${key}`]!]));
        dState = new Map([...dState.keys()].map((name) => [name, o[`new.${name}`]!.data as Float32Array]));
        dStepCount++;
      }
      const terms: Record<string, number> = {};
      for (const name of termNames) terms[name] = value(`term.${name}`);
      return { loss: total, terms, gradNorm, ...(discriminator ? { discriminator } : {}) };
    },
    weights: () => new Map(current),
    optimizerState(): OptimizerState {
      return { step: stepCount, tensors: unflattenState(state, stateLayout) };
    },
    restoreOptimizerState(restored: OptimizerState): void {
      alive();
      state = flattenState(
        restored,
        stateInputs,
        stateLayout,
        stateLength,
        `this runner (${options.optimizer.kind}, ${trainableKeys.length} trainable tensors)`,
      );
      stepCount = restored.step;
    },
    discriminatorState(): DiscriminatorState | undefined {
      if (!gan || !dBuilt) return undefined;
      return {
        spec: gan.spec,
        weights: new Map(dWeights),
        optimizer: { step: dStepCount, tensors: unflattenState(dState, dBuilt.stateLayout) },
      };
    },
    restoreDiscriminatorState(restored: DiscriminatorState): void {
      alive();
      if (!gan || !dBuilt)
        throw new DcaeError(
          'INVALID_ARGUMENT',
          'This runner has no gan term, so it has no discriminator to restore.',
        );
      if (JSON.stringify(resolveDiscriminatorSpec(restored.spec)) !== JSON.stringify(gan.spec))
        throw new DcaeError(
          'WEIGHTS_MISMATCH',
          `The saved discriminator (${JSON.stringify(restored.spec)}) differs from this run's (${JSON.stringify(gan.spec)}).`,
        );
      checkDiscriminatorWeights(
        gan.spec,
        config.inChannels,
        restored.weights,
        'The saved discriminator weights',
      );
      const next = flattenState(
        restored.optimizer,
        dBuilt.stateInputs,
        dBuilt.stateLayout,
        dBuilt.stateLength,
        `the discriminator (AdamW, ${dBuilt.keys.length} tensors)`,
      );
      dWeights = new Map(dBuilt.keys.map((key) => [key, restored.weights.get(key)!]));
      dState = next;
      dStepCount = restored.optimizer.step;
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
      await dSession?.dispose();
      for (const entry of reconstructCache.values()) await entry.session.dispose();
      reconstructCache.clear();
    },
  };
  return runner;
}
