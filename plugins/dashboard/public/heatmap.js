// @ts-check
/** A confusion matrix as a small heat map: a real table (readable by screen readers), each cell shaded by its share of its row. */
import { html } from './html.js'
import { percent } from './format.js'

/**
 * @param {{ rows: string[], columns: string[], counts: number[][], caption: string, isRight?: (row: number, column: number) => boolean }} props
 *   counts[row: what it was][column: what was said]; `isRight` marks the right answers (default: the same name)
 */
export function ConfusionHeatmap ({ rows, columns, counts, caption, isRight }) {
  return html`
    <table class="heatmap">
      <caption>${caption}</caption>
      <thead>
        <tr><td></td>${columns.map((label) => html`<th scope="col">said ${label}</th>`)}</tr>
      </thead>
      <tbody>
        ${rows.map((label, row) => {
          const total = (counts[row] ?? []).reduce((sum, n) => sum + n, 0)
          return html`<tr>
            <th scope="row">was ${label}</th>
            ${columns.map((said, col) => {
              const n = counts[row]?.[col] ?? 0
              const share = total > 0 ? n / total : 0
              const right = isRight ? isRight(row, col) : said === label
              // lightness 97% (none) .. 35% (all of the row); right answers blue, wrong ones orange
              const background = `hsl(${right ? 212 : 24} 75% ${Math.round(97 - share * 62)}%)`
              return html`<td class=${right ? 'right' : 'wrong'} style=${{ background, color: share > 0.55 ? '#fff' : '#111' }}>
                <span class="count">${n}</span> <span class="share">${total > 0 ? percent(share) : '–'}</span>
              </td>`
            })}
          </tr>`
        })}
      </tbody>
    </table>`
}
