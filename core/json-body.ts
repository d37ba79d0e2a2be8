/**
 * The JSON body parser of every route: Fastify's own (prototype-poisoning
 * checks included) behind a nesting limit checked on the raw text before
 * parsing. A body nested thousands of levels deep is far under any size limit
 * but overflows the stack of whatever walks it recursively (parse, validate,
 * stringify a message): it gets a 400 naming the problem instead of a 500.
 */
import type { FastifyInstance } from 'fastify'
import { BadRequestError } from './errors.js'

/** Deepest nesting of arrays and objects a body may have (the deepest legitimate one, the legacy train DATA, has 5). */
export const MAX_JSON_DEPTH = 32

/** How deep `text`'s arrays and objects nest, counting no further than `limit + 1` (strings are skipped, escapes included). */
export function jsonNesting (text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return deepest
}

/** Replaces the app's application/json parser by the depth-checked one (`maxDepth` Infinity: not checked, for a benchmark). */
export function installJsonBodyParser (app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  const parse = app.getDefaultJsonParser('error', 'ignore')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string
    if (maxDepth !== Infinity && jsonNesting(text, maxDepth) > maxDepth) {
      done(new BadRequestError(`body nests arrays and objects more than ${maxDepth} levels deep: no route takes that`), undefined)
      return
    }
    parse(request, text, done)
  })
}
