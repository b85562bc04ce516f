import { createHash } from 'node:crypto';

/**
 * WebDataset groups tar members into samples by the name up to the first dot, so a key must not
 * contain dots (or slashes, which would make folders). Keys are sanitized: characters outside
 * `[A-Za-z0-9_-]` become `_`, and when that changed anything, 8 hex characters of the original's
 * sha256 are appended so that two different names never collide. The original name is kept in
 * the sample's `.json` (docs/latents.md, "Keys").
 */
export function sanitizeKey(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_-]/g, '_');
  if (clean === name && clean !== '') return clean;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${clean}_${hash}`;
}

/** The zero-padded shard name `shard-000042` (six digits, more when needed). */
export function shardName(index: number): string {
  return `shard-${String(index).padStart(6, '0')}`;
}
