/**
 * bfloat16 <-> float32 conversion on raw bits. bfloat16 is the top half of a float32, so widening
 * is a shift; narrowing rounds to nearest, ties to even, overflows to ±Infinity and keeps NaN a
 * (quiet) NaN. Subnormals round like any other value.
 */

const scratch = new DataView(new ArrayBuffer(4));

/** bfloat16 bits of the float32 with bits `bits`. */
export function float32BitsToBfloat16(bits: number): number {
  const isNaN = (bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0;
  if (isNaN) return (bits >>> 16) | 0x40;
  // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry bumps the exponent, up to Inf.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits of `x`, which is first rounded to float32 (as storing it in a Float32Array would). */
export function float32ToBfloat16(x: number): number {
  scratch.setFloat32(0, x);
  return float32BitsToBfloat16(scratch.getUint32(0));
}

/** The value of the bfloat16 with bits `half`. */
export function bfloat16ToFloat32(half: number): number {
  scratch.setUint32(0, (half & 0xffff) << 16);
  return scratch.getFloat32(0);
}

export function float32ArrayToBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const result = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) result[i] = float32BitsToBfloat16(bits[i]!);
  return result;
}

export function bfloat16ArrayToFloat32(halves: Uint16Array): Float32Array {
  const bits = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  return new Float32Array(bits.buffer);
}
