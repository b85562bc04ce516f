import { DcaeError } from '@dcae/core';

/** A key glob as a RegExp: `*` matches any run of characters (dots included), `?` one character. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$+.()|[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/**
 * The keys matched by any of `globs`. Every glob must match at least one key: a glob matching
 * nothing is almost always a typo, so it is TRAINABLE_NO_MATCH with the closest key names.
 */
export function matchTrainable(keys: readonly string[], globs: readonly string[]): string[] {
  const patterns = globs.map((g) => ({ glob: g, re: globToRegExp(g.trim()) }));
  for (const { glob, re } of patterns) {
    if (!keys.some((k) => re.test(k))) {
      const stem = glob.split('*')[0]!.split('.').slice(0, 2).join('.');
      const near = keys.filter((k) => k.startsWith(stem)).slice(0, 5);
      const examples = (near.length > 0 ? near : keys.slice(0, 5)).join(', ');
      throw new DcaeError(
        'TRAINABLE_NO_MATCH',
        `--trainable "${glob}" matches none of the model's ${keys.length} weight keys (diffusers names, e.g. ${examples}). ` +
          'Use diffusers key names with * wildcards, e.g. decoder.conv_out.* or encoder.down_blocks.2.*; "*" trains everything.',
        { detail: { glob, examples: near } },
      );
    }
  }
  return keys.filter((k) => patterns.some(({ re }) => re.test(k)));
}
