// @ts-check
/** htm bound to Preact's `h`: components are written as tagged templates, no JSX build step. */
import { h } from '../vendor/preact.js'
import htm from '../vendor/htm.js'

export const html = htm.bind(h)
