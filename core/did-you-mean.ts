/**
 * "Did you mean …?" for a mistyped field name: the closest of the names a
 * schema takes, when it is close enough to be the one meant. Lives in core/
 * (not domain/) because the validation-error formatter in core/errors.ts uses
 * it, and core/ depends on nothing domain-specific.
 */

/** Case, `_` and `-` do not make a different name: `learning_rate` means `learningRate`, `id` means `ID`. */
function normalise (name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '')
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) that turn `a` into
 * `b` (the optimal-string-alignment distance); `limit + 1` as soon as it must
 * exceed `limit`, so a long unrelated name costs little.
 */
export function editDistance (a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  let before = new Array<number>(b.length + 1).fill(0)
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, before[j - 2] + 1)
      current[j] = best
      rowMin = Math.min(rowMin, best)
    }
    if (rowMin > limit) return limit + 1
    before = previous
    previous = current
  }
  return previous[b.length]
}

/**
 * The candidate `name` most likely meant, or undefined when none is close:
 * one edit per three characters, at least one (`epoch` → `epochs`, `angel` →
 * `angle`, `versoin` → `version`, but not `force` → `source`), ignoring
 * case, `_` and `-`.
 */
export function closestName (name: string, candidates: readonly string[]): string | undefined {
  const wanted = normalise(name)
  const limit = Math.max(1, Math.floor(wanted.length / 3))
  let best: string | undefined
  let bestDistance = limit + 1
  for (const candidate of candidates) {
    const distance = editDistance(wanted, normalise(candidate), limit)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}
