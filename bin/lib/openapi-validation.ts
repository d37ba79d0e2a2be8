/**
 * Validates an OpenAPI document against the official OpenAPI JSON Schemas
 * (3.0, 3.1, 3.2) with @seriousme/openapi-schema-validator, offline: the
 * schemas ship with the package. `npm run openapi` refuses to write, and
 * `npm run openapi -- --check` fails on, a document that does not pass.
 */
import { Validator } from '@seriousme/openapi-schema-validator'

/** What is wrong with the document, one line each (JSON pointer, then the rule); empty when it is valid. */
export async function openApiProblems (document: unknown): Promise<string[]> {
  // the validator keeps the document it was given: a copy leaves the caller's alone
  const result = await new Validator({ allErrors: true }).validate(structuredClone(document) as Record<string, unknown>)
  if (result.valid) return []
  const errors = result.errors ?? 'invalid, with no reason given'
  if (typeof errors === 'string') return [errors]
  // a wrong keyword deep down also fails every oneOf (schema or $ref?) above it: say only the deepest
  const paths = errors.map((error) => error.instancePath)
  const deepest = errors.filter((error) => !paths.some((path) => path.startsWith(error.instancePath + '/')))
  return [...new Set(deepest.map((error) => `${error.instancePath || '/'} ${error.message ?? error.keyword}`))]
}
