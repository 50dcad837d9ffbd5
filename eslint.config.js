// ESLint flat config: @eslint/js recommended + typescript-eslint `recommendedTypeChecked`
// (type-aware: every .ts file is linted with the types of the tsconfig project it belongs to).
// Formatting is Prettier's job (.prettierrc.json); no stylistic rules here.
// Rules turned off or tuned are listed, each with its reason, in docs/development.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '.tap/**', 'var/**', 'tmp/**', 'test/bench/results/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // The typescript-eslint project service finds each file's tsconfig (the workspace's).
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // `_`-prefixed names are the deliberate "unused" of callbacks and destructuring.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Functions passed where a callback returning void is expected (event listeners, tap's
      // t.test, server handlers) are async by design; their rejections are handled inside.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // `${n}` of numbers and booleans in messages is intended; objects and unknowns are still caught.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
      // tap queues subtests and waits for them: `t.test(…)` is not a floating promise.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] }],
    },
  },
  {
    // Plain JavaScript (the CLI shim, micro-benchmarks) is in no tsconfig: lint it without types.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', performance: 'readonly', setTimeout: 'readonly', URL: 'readonly' },
    },
  },
);
