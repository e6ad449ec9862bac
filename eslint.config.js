// Type-aware lint: floating promises are bugs in a server that must never lose a message.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The browser globals the web client uses, read-only. */
function browserGlobals() {
  const names = ['window', 'document', 'navigator', 'location', 'localStorage', 'performance', 'crypto', 'console', 'addEventListener',
    'removeEventListener', 'requestAnimationFrame', 'queueMicrotask', 'setTimeout', 'clearTimeout', 'Intl', 'URL', 'HTMLElement',
    'HTMLInputElement', 'HTMLTextAreaElement', 'HTMLDivElement', 'KeyboardEvent', 'Event'];
  return Object.fromEntries(names.map((n) => [n, 'readonly']));
}

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'data/**', '.test-output/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts', 'packages/web/src/**/*.tsx'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: ['./packages/*/tsconfig.json', './tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test registers tests by calling these; their promises are the runner's business.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Tests read JSON bodies loosely on purpose; type-aware checks on promises stay on.
    files: ['packages/*/test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // The web client runs in browsers: their globals, and nothing of Node's. (TypeScript checks
    // names against the DOM library of packages/web/tsconfig.json; this is for ESLint's own view.)
    files: ['packages/web/src/**/*.{ts,tsx}'],
    languageOptions: { globals: browserGlobals() },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
