/** Hand-built safetensors bytes (docs/reliability.md Appendix B): u64le(N) + header + data. */
export interface CraftOptions {
  /** Overrides the length field (the header bytes stay as given). */
  headerLength?: bigint;
  /** Data bytes after the header, filled with `fill`. @defaultValue 0 */
  dataLength?: number;
  fill?: number;
  /** Raw header bytes to use instead of the UTF-8 of `header`. */
  rawHeader?: Uint8Array;
}

export function craft(header: string, options: CraftOptions = {}): Uint8Array {
  const headerBytes = options.rawHeader ?? new TextEncoder().encode(header);
  const dataLength = options.dataLength ?? 0;
  const bytes = new Uint8Array(8 + headerBytes.length + dataLength);
  new DataView(bytes.buffer).setBigUint64(0, options.headerLength ?? BigInt(headerBytes.length), true);
  bytes.set(headerBytes, 8);
  bytes.fill(options.fill ?? 0, 8 + headerBytes.length);
  return bytes;
}

/** `{"dtype":…,"shape":…,"data_offsets":…}` written by hand so odd values survive. */
export function entry(dtype: string, shape: string, offsets: string): string {
  return `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;
}
