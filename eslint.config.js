// ESLint flat config: @eslint/js recommended + typescript-eslint `recommendedTypeChecked`
// (type-aware: every .ts file is linted with the types of the tsconfig project it belongs to).
// Formatting is Prettier's job (.prettierrc.json); no stylistic rules here.
// Rules turned off or tuned are listed, each with its reason, in docs/development.md (and below).
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
      // A gateway parsing wire protocols matches control bytes on purpose (binary sniffing, SASLprep, note bodies).
      'no-control-regex': 'off',
      // tap queues subtests and waits for them: `t.test(…)` is not a floating promise.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] }],
    },
  },
  {
    // tap tests are `t.test('…', async (t) => { … })` throughout, whether or not a given test awaits.
    files: ['**/test/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    // Plain JavaScript (the CLI shim, micro-benchmarks) is in no tsconfig: lint it without types.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', performance: 'readonly', setTimeout: 'readonly', URL: 'readonly' },
    },
  },
  {
    // The web console's hand-written browser modules (gateway/ui): browser globals, no Node ones.
    files: ['gateway/ui/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        fetch: 'readonly',
        EventSource: 'readonly',
        Event: 'readonly',
        FormData: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        Node: 'readonly',
        queueMicrotask: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        process: 'off',
        Buffer: 'off',
      },
    },
  },
);
