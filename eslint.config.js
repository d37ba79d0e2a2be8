import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['node_modules', 'data', 'docs-site', 'coverage', 'bench/results', 'client/schema.d.ts'] }),
  {
    rules: {
      // a TypeBox schema and its Static<> type share one name by design; tsc catches real redeclarations
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
