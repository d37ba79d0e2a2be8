import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['node_modules', 'data', 'docs-site', 'coverage', 'bench/results', 'client/schema.d.ts'] }),
  {
    rules: {
      // a TypeBox schema and its Static<> type share one name by design; tsc catches real redeclarations
      '@typescript-eslint/no-redeclare': 'off',
      // a line reads whole on a laptop screen and in a side-by-side diff; a test's title is its spec sentence, so it may run on
      '@stylistic/max-len': ['error', {
        code: 160,
        tabWidth: 2,
        ignoreUrls: true,
        ignorePattern: String.raw`^\s*(?:await\s+)?(?:t\.)?(?:test|it|describe)\(`
      }]
    }
  }
]
