// Shared vitest project settings: tests run against package sources (the "@dcae/source"
// export condition), in forked processes (onnxruntime-node is a native addon).
/** @param {string} name @param {Record<string, unknown>} [extra] */
export function vitestProject(name, extra = {}) {
  return {
    resolve: { conditions: ['@dcae/source'] },
    ssr: { resolve: { conditions: ['@dcae/source'] } },
    test: {
      name,
      include: ['test/**/*.test.ts'],
      pool: 'forks',
      testTimeout: 60_000,
      hookTimeout: 60_000,
      ...extra,
    },
  };
}
