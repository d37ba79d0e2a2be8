/**
 * The rules of the house (docs/architecture.md, "Layout"), checked by `npm run house`
 * (part of `npm test`). Type-only imports count: a cycle through types is a
 * cycle a reader has to untangle all the same.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'an import cycle means neither module can be read, tested or moved without the other: break it with a shared module in domain/, ml/ or schemas/',
      from: {},
      to: { circular: true }
    },
    {
      name: 'core-knows-plugins-only-through-app',
      severity: 'error',
      comment: 'core/ is the microkernel: only core/app.ts knows the plugins, and only to register each through its index.ts',
      from: { path: '^core/', pathNot: '^core/app\\.ts$' },
      to: { path: '^plugins/' }
    },
    {
      name: 'app-registers-plugin-indexes',
      severity: 'error',
      comment: 'core/app.ts registers a plugin through its index.ts; reaching into a plugin\'s other files couples the kernel to its insides',
      from: { path: '^core/app\\.ts$' },
      to: { path: '^plugins/', pathNot: '^plugins/[^/]+/index\\.ts$' }
    },
    {
      name: 'core-stands-alone',
      severity: 'error',
      comment: 'core/ holds nothing domain-specific: it must not depend on the engine (ml/), the domain logic (domain/) or an executable (bin/)',
      from: { path: '^core/' },
      to: { path: '^(ml|domain|bin)/' }
    },
    {
      name: 'plugins-meet-through-decorators',
      severity: 'error',
      comment: 'a plugin reaches another area only through its decorators and events (declared beside `decorate`) and ' +
        'schemas/; logic two areas need goes to domain/ or ml/',
      from: { path: '^plugins/([^/]+)/' },
      to: { path: '^plugins/', pathNot: '^plugins/$1/' }
    },
    {
      name: 'domain-is-pure',
      severity: 'error',
      comment: 'domain/ is pure functions over plain values: it may use schemas/ and nothing else of the project, so the ' +
        'worker, the CLI and every plugin can share it',
      from: { path: '^domain/' },
      to: { path: '^(core|ml|plugins|bin|bench|test|agent|client)/' }
    },
    {
      name: 'schemas-stand-alone',
      severity: 'error',
      comment: 'schemas/ are values (TypeBox) that routes, openapi.json and the client are generated from: they depend on nothing else of the project',
      from: { path: '^schemas/' },
      to: { path: '^(core|ml|domain|plugins|bin|bench|test|agent|client)/' }
    },
    {
      name: 'ml-knows-no-fastify-area',
      severity: 'error',
      comment: 'ml/ is the engine the plugins, the CLI, the worker and the benchmarks share: it must not depend on a plugin or an executable',
      from: { path: '^ml/' },
      to: { path: '^(plugins|bin)/' }
    },
    {
      name: 'ml-knows-no-fastify',
      severity: 'error',
      comment: 'ml/ knows nothing of Fastify (the @fastify/rate-limit store pattern): the plugin is the adapter',
      from: { path: '^ml/' },
      to: { path: '(^|/)node_modules/(fastify|@fastify/(?!error))' }
    },
    {
      name: 'ml-models-are-computation',
      severity: 'error',
      comment: 'ml/door/ and ml/global/ are the two models (train, predict, evaluate: computation over values, the tfjs module ' +
        'passed in): they know nothing of where versions and samples live (ml/store/), how a run is launched ' +
        '(ml/training/), the handlers, or each other; what both need sits at ml/\'s root',
      from: { path: '^ml/(door|global)/' },
      to: { path: '^ml/(store/|training/|(door|global)/|model-handler\\.ts$|door-models\\.ts$)', pathNot: '^ml/$1/' }
    },
    {
      name: 'ml-store-launches-nothing',
      severity: 'error',
      comment: 'ml/store/ keeps versions, samples and the training log behind plain interfaces (a second store slots in ' +
        'without touching the rest): it may read a model\'s meta, never launch a run or reach a handler',
      from: { path: '^ml/store/' },
      to: { path: '^ml/(training/|model-handler\\.ts$|door-models\\.ts$)' }
    },
    {
      name: 'ml-shared-modules-stay-below',
      severity: 'error',
      comment: 'the modules at ml/\'s root besides the handlers (backend, artifacts, model-types, novelty, training-set) are ' +
        'what the models, the store and the runs share: they import no part above them (a door model\'s types excepted)',
      from: { path: '^ml/[^/]+\\.ts$', pathNot: '^ml/(model-handler|door-models)\\.ts$' },
      to: { path: '^ml/(store/|training/|global/|door/(?!model-types\\.ts$)|model-handler\\.ts$|door-models\\.ts$)' }
    },
    {
      name: 'ml-handlers-are-the-top',
      severity: 'error',
      comment: 'ml/model-handler.ts (fastify.model) and ml/door-models.ts (its doorModels) tie the models, the store and the ' +
        'runs together: nothing else in ml/ imports them (the model handler holds the door models)',
      from: { path: '^ml/', pathNot: '^ml/model-handler\\.ts$' },
      to: { path: '^ml/(model-handler|door-models)\\.ts$' }
    },
    {
      name: 'executables-use-the-engine-not-plugins',
      severity: 'error',
      comment: 'bin/ and bench/ reach the model engine through ml/ (and domain/, schemas/, core/), never through a plugin\'s files',
      from: { path: '^(bin|bench)/' },
      to: { path: '^plugins/' }
    },
    {
      name: 'executables-are-leaves',
      severity: 'error',
      comment: 'bin/ holds executables: library code must not depend on one (only bin/ itself and its tests may import it)',
      from: { pathNot: '^(bin|test)/' },
      to: { path: '^bin/' }
    },
    {
      name: 'benchmarks-are-leaves',
      severity: 'error',
      comment: 'bench/ is run by `npm run bench`; nothing else may depend on it',
      from: { pathNot: '^bench/' },
      to: { path: '^bench/' }
    },
    {
      name: 'tests-are-leaves',
      severity: 'error',
      comment: 'test/ code (fixtures included) is for the tests: the service must never depend on it (a benchmark may share a ' +
        'fixture and test/helper.ts, e.g. the fuzz generator)',
      from: { pathNot: '^test/' },
      to: { path: '^test/', pathNot: '^test/(fixtures/[^/]+|helper)\\.ts$' }
    },
    {
      name: 'only-benchmarks-share-fixtures',
      severity: 'error',
      comment: 'outside test/, only bench/ may use a test fixture: the service must never depend on one',
      from: { pathNot: '^(test|bench)/' },
      to: { path: '^test/' }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|docs-site|coverage)/' },
    // type-only imports are edges too
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types']
    },
    reporterOptions: {
      text: { highlightFocused: true }
    }
  }
}
