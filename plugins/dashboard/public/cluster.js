// @ts-check
/** The footer: which instance answered, and in a cluster the instances and the partitions each owns (GET /cluster). */
import { useEffect, useState } from '../vendor/hooks.js'
import { api, must } from './api.js'
import { html } from './html.js'

/** @typedef {import('./types').ClusterStatus} ClusterStatus */

const REFRESH_MS = 5_000

export function ClusterFooter () {
  const [status, setStatus] = useState(/** @type {ClusterStatus | null} */ (null))
  useEffect(() => {
    const read = () => must(api.GET('/cluster')).then(setStatus, () => setStatus(null))
    read()
    const timer = setInterval(read, REFRESH_MS)
    return () => clearInterval(timer)
  }, [])
  if (!status) return null
  if (status.mode === 'embedded') return html`<footer class="cluster muted">One instance (embedded) · <code>${status.instance}</code></footer>`
  return html`
    <footer class="cluster muted">
      <span>Cluster <code>${status.cluster}</code>: ${status.instances.length} instances, ${status.partitions} partitions</span>
      <ul>
        ${status.instances.map((instance) => html`
          <li key=${instance.id}>
            <code>${instance.id}</code>${instance.self ? ' (this one)' : ''}:
            owns ${instance.owned.length === 0 ? 'no partition' : instance.owned.join(', ')}${instance.lag > 0 ? ` · ${instance.lag} batches behind` : ''}
          </li>`)}
      </ul>
    </footer>`
}
