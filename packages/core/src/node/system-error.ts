/** The `code` of a Node system error (`ENOENT`, `ENOSPC`, ...), or undefined for any other value. */
export function systemErrorCode(error: unknown): string | undefined {
  const isSystemError = typeof error === 'object' && error !== null && 'syscall' in error && 'code' in error;
  return isSystemError && typeof error.code === 'string' ? error.code : undefined;
}
