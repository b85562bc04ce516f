import { it } from 'vitest';
import { Emit } from '../src/autodiff/grad.js';
import { buildDcAeForward } from '../src/ir/dcae.js';
import { buildLoss } from '../src/losses/index.js';
import { evaluate, neededNodes } from '../src/reference/interpreter.js';
import { evalOp } from '../src/reference/ops.js';
import { fromHost } from '../src/reference/tensor.js';
import { imageBatch, loadFixture } from './helpers.js';

it('scratch', async () => {
  const fx = loadFixture('fixtures/dcae/tiny-sana-f32');
  const fwd = buildDcAeForward(fx.config, fx.weights, { batch: 1, height: 64, width: 32 });
  const e = new Emit(fwd.g);
  const l = buildLoss(e, fwd.output, fwd.input, { ssim: 1 });
  const order = neededNodes(fwd.g, [l.total]);
  const feeds = new Map([['sample', fromHost(imageBatch([1, 3, 64, 32], 7))]]);
  let t = performance.now();
  const env = evaluate(fwd.g, feeds, order);
  console.log('full eval ms', performance.now() - t, order.length);
  const byOp = new Map<string, number>();
  for (const i of order) {
    const n = fwd.g.nodes[i]!;
    const ins = n.inputs.map((x) => (x === '' ? undefined : env.get(x) ?? feeds.get(x) ?? fwd.g.constValue(x) ?? fromHost(fwd.g.weights.get(x)!)));
    t = performance.now();
    evalOp(n.op, ins, n.attrs);
    byOp.set(n.op, (byOp.get(n.op) ?? 0) + performance.now() - t);
  }
  console.log([...byOp].sort((a, b) => b[1] - a[1]).slice(0, 8));
}, 600000);
