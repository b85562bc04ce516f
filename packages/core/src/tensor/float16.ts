/**
 * IEEE 754 binary16 (fp16) <-> binary32 conversion on raw bits. fp16 values live in a Uint16Array
 * (JS has no Float16Array before ES2025). Narrowing rounds to nearest, ties to even, keeps
 * subnormals, overflows to ±Infinity and keeps NaN a (quiet) NaN.
 */

const scratch = new DataView(new ArrayBuffer(4));

function float32Bits(x: number): number {
  scratch.setFloat32(0, x);
  return scratch.getUint32(0);
}

function float32FromBits(bits: number): number {
  scratch.setUint32(0, bits);
  return scratch.getFloat32(0);
}

/** fp16 bits of the float32 with bits `bits`. */
export function float32BitsToFloat16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;

  if (exponent === 0xff) {
    // Inf stays Inf; a NaN keeps its top payload bits and is forced quiet so it cannot become Inf.
    return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200 | (mantissa >>> 13));
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal fp16 (or zero): shift the 24-bit significand, implicit 1 included, into 10 bits.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    return sign | roundShift(mantissa | 0x800000, shift);
  }
  // A carry out of the mantissa correctly bumps the exponent, up to Inf.
  return sign | roundShift((halfExponent << 23) | mantissa, 13);
}

/** `value >>> shift` rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const truncated = value >>> shift;
  const remainder = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return remainder > half || (remainder === half && (truncated & 1) === 1) ? truncated + 1 : truncated;
}

/** float32 bits of the fp16 with bits `half` (exact: every fp16 value is a float32 value). */
export function float16BitsToFloat32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;

  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal fp16: normalise so the leading 1 becomes the implicit bit of a float32 normal.
  const leadingZeros = Math.clz32(mantissa) - 22;
  const normalised = (mantissa << (leadingZeros + 1)) & 0x3ff;
  return (sign | ((127 - 15 - leadingZeros) << 23) | (normalised << 13)) >>> 0;
}

/** fp16 bits of `x`, which is first rounded to float32 (as storing it in a Float32Array would). */
export function float32ToFloat16(x: number): number {
  return float32BitsToFloat16(float32Bits(x));
}

/** The value of the fp16 with bits `half`. */
export function float16ToFloat32(half: number): number {
  return float32FromBits(float16BitsToFloat32Bits(half));
}

export function float32ArrayToFloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const result = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) result[i] = float32BitsToFloat16(bits[i]!);
  return result;
}

export function float16ArrayToFloat32(halves: Uint16Array): Float32Array {
  const bits = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) bits[i] = float16BitsToFloat32Bits(halves[i]!);
  return new Float32Array(bits.buffer);
}
