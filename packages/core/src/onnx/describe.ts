import { formatShape } from '../errors.js';
import type { AttributeValue, OnnxGraph, OnnxModel, ValueInfo } from './model.js';
import { initializerDType, initializerShape } from './model.js';

/**
 * A compact, line-per-node text view of a model for debugging and snapshot tests:
 *
 *     input  sample: float32 [batch, 3, height, width]
 *     init   encoder.conv_in.weight: float32 [64, 3, 3, 3] @ model.safetensors+1024
 *     node   /encoder/conv_in/Conv: /encoder/conv_in/Conv_output_0 = Conv(sample, encoder.conv_in.weight, …) {group=1, pads=[1, 1, 1, 1]}
 *     output latent: float32 [batch, 32, h, w]
 */
export function describeModel(model: OnnxModel): string {
  const lines = [`model ${model.graph.name} (opset ${model.opset}, ir ${model.irVersion})`];
  describeGraph(model.graph, '', lines);
  return lines.join('\n');
}

function describeGraph(graph: OnnxGraph, indent: string, lines: string[]): void {
  for (const input of graph.inputs) lines.push(`${indent}input  ${valueInfo(input)}`);
  for (const { name, data } of graph.initializers) {
    const where = data.kind === 'external' ? ` @ ${data.location}+${data.offset}` : '';
    lines.push(
      `${indent}init   ${name}: ${initializerDType(data)} ${formatShape(initializerShape(data))}${where}`,
    );
  }
  for (const node of graph.nodes) {
    const attrs = Object.entries(node.attributes).filter(([, a]) => a.kind !== 'graph');
    const attrText = attrs.length ? ` {${attrs.map(([k, a]) => `${k}=${attribute(a)}`).join(', ')}}` : '';
    const outs = node.outputs.join(', ');
    lines.push(
      `${indent}node   ${node.name}: ${outs} = ${node.domain ? `${node.domain}.` : ''}${node.opType}(${node.inputs.join(', ')})${attrText}`,
    );
    for (const [key, attr] of Object.entries(node.attributes)) {
      if (attr.kind !== 'graph') continue;
      lines.push(`${indent}  ${key}:`);
      describeGraph(attr.value, `${indent}    `, lines);
    }
  }
  for (const output of graph.outputs) lines.push(`${indent}output ${valueInfo(output)}`);
}

function valueInfo(info: ValueInfo): string {
  return `${info.name}: ${info.dtype} ${info.shape ? formatShape(info.shape) : '[?]'}`;
}

function attribute(a: AttributeValue): string {
  switch (a.kind) {
    case 'ints':
    case 'floats':
      return formatShape(a.value);
    case 'string':
      return JSON.stringify(a.value);
    case 'graph':
      return `<graph ${a.value.name}>`;
    default:
      return String(a.value);
  }
}
