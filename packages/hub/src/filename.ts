import { DcaeError } from '@dcae/core';

/**
 * Why `file` is unsafe as a path inside a repo (and so inside the cache), or undefined when it is
 * safe. Both POSIX and Windows readings count, as in huggingface_hub's `_validate_relative_filename`:
 * absolute (`/x`, `\x`), drive (`C:x`), UNC (`\\host\x`), a `..` or `.` part, an empty part,
 * a backslash or a NUL.
 */
function filenameProblem(file: string): string | undefined {
  if (file.length === 0) return 'it is empty';
  if (file.includes('\0')) return 'it contains a NUL character';
  if (file.startsWith('\\\\') || file.startsWith('//')) return 'it is a UNC path';
  if (file.startsWith('/') || file.startsWith('\\')) return 'it is absolute';
  if (/^[A-Za-z]:/.test(file)) return 'it starts with a drive letter';
  if (file.includes('\\')) return 'it contains a backslash (a path separator on Windows)';
  const parts = file.split('/');
  if (parts.some((part) => part === '..')) return 'it has a ".." part';
  if (parts.some((part) => part === '.' || part === '')) return 'it has an empty or "." part';
  return undefined;
}

/**
 * Returns `file` when it is a safe relative path inside a repo; throws UNSAFE_PATH otherwise.
 * Call it before the name reaches any file-system call (docs/reliability.md §9 DL8).
 */
export function checkRepoFilename(file: string, repo = ''): string {
  const problem = filenameProblem(file);
  if (problem !== undefined) {
    throw new DcaeError(
      'UNSAFE_PATH',
      `${repo === '' ? '' : `${repo}: `}file name ${JSON.stringify(file)} is refused: ${problem}. ` +
        'Repo file names must be relative paths that stay inside the repo.',
      { source: repo === '' ? file : `${repo}/${file}` },
    );
  }
  return file;
}
