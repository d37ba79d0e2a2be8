/**
 * The dashboard's files, read once at start into memory: the page's own files
 * (plugins/dashboard/public/) and the vendored ES modules straight from
 * node_modules (no bundler, no build step). Every file is kept raw and
 * gzipped, with its SHA-256; the build id is a hash of them all, so the URLs
 * under `/dashboard/<build>/` change whenever any byte does and can be cached
 * for good. Knows nothing of HTTP.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { PROJECT_ROOT } from '../../core/project.js'

/** The page's own files. */
export const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url))

/** One file ready to send. */
export interface DashboardAsset {
  body: Buffer
  gzip: Buffer
  contentType: string
  /** strong ETag (quoted SHA-256 prefix) */
  etag: string
}

/** Everything the dashboard serves. */
export interface DashboardAssets {
  /** changes whenever any served byte changes */
  build: string
  /** the page, with the build id filled in */
  index: DashboardAsset
  /** by path under `/dashboard/<build>/`, e.g. `assets/app.js`, `vendor/preact.js` */
  files: ReadonlyMap<string, DashboardAsset>
}

/** A vendored module: where it comes from in node_modules and what must be rewritten for a browser. */
export interface VendorFile {
  /** path under `/dashboard/<build>/vendor/` */
  name: string
  /** path under node_modules */
  source: string
  /** bare import specifiers a browser cannot resolve, replaced by relative ones (each must occur) */
  rewrite?: ReadonlyArray<readonly [string, string]>
  /** imported on demand (`import()`), so not preloaded with the page */
  lazy?: boolean
}

/** The vendored modules; their types for the page come from the shims in plugins/dashboard/vendor/. */
export const VENDOR_FILES: readonly VendorFile[] = [
  { name: 'preact.js', source: 'preact/dist/preact.module.js' },
  // hooks import "preact" by its bare name; the page has no import map (a CSP `script-src 'self'` forbids the inline one)
  { name: 'hooks.js', source: 'preact/hooks/dist/hooks.module.js', rewrite: [['from"preact"', 'from"./preact.js"']] },
  { name: 'htm.js', source: 'htm/dist/htm.module.js' },
  // 41 KB gzipped, needed only once a training runs: chart.js imports it on demand
  { name: 'uplot.js', source: 'uplot/dist/uPlot.esm.js', lazy: true },
  { name: 'uplot.css', source: 'uplot/dist/uPlot.min.css' },
  { name: 'openapi-fetch.js', source: 'openapi-fetch/dist/index.mjs' }
]

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon'
}

/** The placeholder index.html holds where the build id goes. */
export const BUILD_PLACEHOLDER = '%BUILD%'
/** Where index.html gets a modulepreload link per module, so the browser fetches them all at once instead of import by import. */
export const PRELOAD_PLACEHOLDER = '%PRELOAD%'
/** Where index.html gets the admin token file's path, for the token prompt to name (empty when ADMIN_TOKEN is set). */
export const ADMIN_TOKEN_FILE_PLACEHOLDER = '%ADMIN_TOKEN_FILE%'

export interface LoadOptions {
  publicDir?: string
  nodeModulesDir?: string
  /** The file the admin token is kept in (DATA_DIR/admin-token), or null when it is the ADMIN_TOKEN setting. */
  adminTokenFile?: string | null
}

/** Reads every file the dashboard serves; throws (start-up fails) when a vendored file is missing or changed shape. */
export function loadDashboardAssets (options: LoadOptions = {}): DashboardAssets {
  const publicDir = options.publicDir ?? PUBLIC_DIR
  const nodeModulesDir = options.nodeModulesDir ?? join(PROJECT_ROOT, 'node_modules')
  const sources = new Map<string, Buffer>()

  for (const name of readdirSync(publicDir).sort()) {
    // tsconfig.json and .d.ts files are for the type checker, not the browser
    if (name === 'index.html' || !(extname(name) in CONTENT_TYPES) || name.endsWith('.d.ts')) continue
    sources.set(`assets/${name}`, readFileSync(join(publicDir, name)))
  }
  for (const vendor of VENDOR_FILES) sources.set(`vendor/${vendor.name}`, Buffer.from(vendorText(nodeModulesDir, vendor)))

  const hash = createHash('sha256')
  const indexTemplate = readFileSync(join(publicDir, 'index.html'), 'utf8')
  hash.update(indexTemplate)
  for (const [path, body] of sources) hash.update(`\0${path}\0`).update(body)
  const build = hash.digest('hex').slice(0, 12)

  const files = new Map<string, DashboardAsset>()
  for (const [path, body] of sources) files.set(path, asset(body, path))
  const lazy = new Set(VENDOR_FILES.filter((vendor) => vendor.lazy).map((vendor) => `vendor/${vendor.name}`))
  const preload = [...files.keys()].filter((path) => path.endsWith('.js') && !lazy.has(path))
    .map((path) => `<link rel="modulepreload" href="/dashboard/${build}/${path}">`).join('\n  ')
  const index = indexTemplate.replace(PRELOAD_PLACEHOLDER, preload).replaceAll(BUILD_PLACEHOLDER, build)
    .replace(ADMIN_TOKEN_FILE_PLACEHOLDER, escapeAttribute(options.adminTokenFile ?? ''))
  return { build, index: asset(Buffer.from(index), 'index.html'), files }
}

/** Text safe inside a double-quoted HTML attribute. */
function escapeAttribute (text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

function vendorText (nodeModulesDir: string, vendor: VendorFile): string {
  let text = readFileSync(join(nodeModulesDir, vendor.source), 'utf8')
  for (const [from, to] of vendor.rewrite ?? []) {
    if (!text.includes(from)) {
      throw new Error(`dashboard: ${vendor.source} no longer contains ${JSON.stringify(from)}; update VENDOR_FILES in plugins/dashboard/assets.ts`)
    }
    text = text.replaceAll(from, to)
  }
  // the maps are not served, so a browser's devtools must not ask for them
  return text.replace(/\n?\/[/*]# sourceMappingURL=\S+(?: \*\/)?\s*$/, '\n')
}

function asset (body: Buffer, path: string): DashboardAsset {
  return {
    body,
    gzip: gzipSync(body, { level: 9 }),
    contentType: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 27)}"`
  }
}
