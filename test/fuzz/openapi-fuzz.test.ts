/**
 * The short fuzz run of npm test: every operation of the served contract,
 * RUNS generated requests each, on one app (see test/fixtures/fuzz.ts for
 * what is generated and checked). The seed is fixed and printed; FUZZ_SEED
 * replays another run. `npm run bench -- fuzz` runs a long one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN_TOKEN, buildTestApp } from '../helper.js'
import {
  ContractChecker, describeFailures, FUZZ_ENV, fuzzContract, fuzzOperations, fuzzSeed, prepareFuzzApp, type FuzzOperation, type FuzzRequest
} from '../fixtures/fuzz.js'

/** Cases per operation: about 1,100 requests, ~6 s of CPU with the app, the model and one training the fuzz starts. */
const RUNS = 25

test('the fuzz checker fails what breaks the contract', () => {
  const document = {
    paths: {
      '/admin/thing': {
        post: {
          security: [{ admin: [] }],
          responses: {
            200: {
              content: {
                'application/json': { schema: { type: 'object', required: ['n'], properties: { n: { type: 'integer', minimum: 0, exclusiveMinimum: true } } } }
              }
            },
            400: { content: { 'application/json': { schema: { type: 'object', required: ['message'], properties: { message: { type: 'string' } } } } } },
            503: { content: { 'application/json': { schema: { type: 'object' } } } }
          }
        }
      },
      '/open': { get: { responses: { 200: { content: { 'text/plain': { schema: { type: 'string' } } } } } } }
    }
  }
  const [adminRoute, openRoute] = fuzzOperations(document) as [FuzzOperation, FuzzOperation]
  const checker = new ContractChecker()
  const request = (auth: FuzzRequest['auth']): FuzzRequest => ({ method: 'POST', url: '/admin/thing', headers: {}, auth, kind: 'test' })
  const json = { 'content-type': 'application/json; charset=utf-8' }
  const problems = (operation: FuzzOperation, auth: FuzzRequest['auth'], statusCode: number, body: unknown, headers: Record<string, string> = json) =>
    checker.check(operation, request(auth), { statusCode, headers, body: typeof body === 'string' ? body : JSON.stringify(body) })

  assert.deepEqual(problems(adminRoute, 'admin', 200, { n: 1 }), [])
  assert.deepEqual(problems(adminRoute, 'none', 400, { message: 'x' }), [], 'a 400 before the token check is not a bypass')
  assert.match(problems(adminRoute, 'admin', 200, { n: 0 }).join(), /does not match the contract: \/n must be > 0/, 'the 3.0 exclusive bound holds')
  assert.match(problems(adminRoute, 'admin', 500, { message: 'x' }).join(), /a server error/)
  assert.match(problems(adminRoute, 'admin', 500, { message: 'x' }).join(), /does not list/)
  assert.match(problems(adminRoute, 'admin', 404, { message: 'x' }).join(), /answered 404, which the contract does not list/)
  assert.match(problems(adminRoute, 'admin', 200, 'n=1', { 'content-type': 'text/plain' }).join(), /as "text\/plain", the contract says application\/json/)
  assert.match(problems(adminRoute, 'admin', 200, '{n:1', json).join(), /not JSON/)
  assert.match(problems(adminRoute, 'none', 200, { n: 1 }).join(), /without a token the contract asks for/)
  assert.match(problems(adminRoute, 'admin', 200, { n: 1, leaked: ADMIN_TOKEN }).join(), /holds a token/)
  assert.match(problems(adminRoute, 'admin', 503, { code: 'DS_NO_MODEL' }).join(), /a server error/, 'a 503 without Retry-After is no deliberate refusal')
  assert.deepEqual(problems(adminRoute, 'admin', 503, { code: 'DS_NO_MODEL' }, { ...json, 'retry-after': '1' }), [],
    'a listed "come back later" 503 is allowed')
  assert.match(problems(openRoute, 'none', 401, 'no', { 'content-type': 'text/plain' }).join(), /asks for no token/)
  assert.deepEqual(problems(openRoute, 'wrong', 200, 'ok', { 'content-type': 'text/plain; charset=utf-8' }), [])
})

test(`every operation keeps the contract under ${RUNS} generated requests (fast-check from the served OpenAPI document; FUZZ_SEED replays a run)`, { timeout: 180_000 }, async (t) => {
  const seed = fuzzSeed()
  t.diagnostic(`fuzz seed ${seed}: FUZZ_SEED=${seed} replays this run`)
  const app = await buildTestApp(t, FUZZ_ENV)
  const hints = await prepareFuzzApp(app)
  const report = await fuzzContract(app, hints, { seed, runs: RUNS })
  const operations = fuzzOperations(app.swagger())
  t.diagnostic(`${report.cases} cases over ${report.operations.length} operations in ${report.ms} ms; ${report.failures.length} failing`)
  assert.equal(report.operations.length, operations.length, 'every documented operation was fuzzed')
  assert.equal(report.failures.length, 0, `the contract was broken (seed ${seed}):\n${describeFailures(report.failures)}`)
  // the generator reaches the handlers, not only the validators: most operations answered a 2xx at least once
  const succeeded = report.operations.filter((operation) => Object.keys(operation.statuses).some((status) => status.startsWith('2')))
  const without = report.operations.filter((operation) => !succeeded.includes(operation)).map((operation) => operation.operation)
  t.diagnostic(`no 2xx for: ${without.join(', ') || 'none'}`)
  assert.ok(succeeded.length >= operations.length * 0.8,
    `only ${succeeded.length} of ${operations.length} operations ever succeeded; none for ${without.join(', ')}`)
})
