// One type-aware lint configuration for every package (run per package by turbo).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** @param {string} tsconfigRootDir */
export function dcaeLint(tsconfigRootDir) {
  return tseslint.config(
    { ignores: ['dist/**', 'node_modules/**', '**/*.js', '**/*.mjs', '**/*.cjs', '*.config.ts'] },
    js.configs.recommended,
    ...tseslint.configs.recommendedTypeChecked,
    {
      languageOptions: { parserOptions: { projectService: true, tsconfigRootDir } },
      rules: {
        '@typescript-eslint/consistent-type-imports': 'error',
        '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
        '@typescript-eslint/no-non-null-assertion': 'off',
        '@typescript-eslint/require-await': 'off',
        'no-console': 'error',
      },
    },
    {
      files: ['src/**/*.ts'],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                group: ['@dcae/*/src/*', '@dcae/*/dist/*'],
                message: 'Import a package entry or documented subpath, never its files.',
              },
            ],
          },
        ],
      },
    },
    {
      files: ['test/**/*.ts', 'bench/**/*.ts'],
      rules: {
        '@typescript-eslint/no-unsafe-assignment': 'off',
        '@typescript-eslint/no-unsafe-member-access': 'off',
        '@typescript-eslint/no-unsafe-argument': 'off',
        '@typescript-eslint/no-unsafe-call': 'off',
        '@typescript-eslint/unbound-method': 'off',
        'no-console': 'off',
      },
    },
  );
}

/** Packages other than runtime-adapters must never import onnxruntime. */
export const noOnnxruntime = {
  files: ['src/**/*.ts', 'test/**/*.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: ['onnxruntime-*'],
            message:
              'Only @dcae/runtime-adapters may import onnxruntime; use the RuntimeV1 spec from @dcae/core/runtime.',
          },
          {
            group: ['@dcae/*/src/*', '@dcae/*/dist/*'],
            message: 'Import a package entry or documented subpath, never its files.',
          },
        ],
      },
    ],
  },
};
