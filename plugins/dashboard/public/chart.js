// @ts-check
/* global ResizeObserver */
/**
 * The live training curve: loss and accuracy per epoch (uPlot on a canvas;
 * the caption beside it says the same in words). uPlot is loaded when the
 * first curve is drawn, not with the page: most visits never see a training.
 */
import { useEffect, useRef } from '../vendor/hooks.js'
import { html } from './html.js'

/** @typedef {import('../vendor/uplot.js').default} UPlot */
/** @typedef {import('./streams.js').Curve} Curve */

/** @type {Promise<typeof import('../vendor/uplot.js').default> | undefined} */
let loading
function loadUPlot () {
  loading ??= import('../vendor/uplot.js').then((module) => module.default)
  return loading
}

/** @param {Curve} curve @returns {import('../vendor/uplot.js').default.AlignedData} */
function data (curve) {
  return [curve.epochs, curve.loss, curve.accuracy]
}

const HEIGHT = 200

/** @param {number} width @returns {import('../vendor/uplot.js').default.Options} */
function chartOptions (width) {
  return {
    width: Math.max(200, width),
    height: HEIGHT,
    scales: { x: { time: false }, accuracy: { range: [0, 1] } },
    series: [
      { label: 'Epoch' },
      { label: 'Loss', scale: 'loss', stroke: '#c2410c', width: 2, value: (_, v) => v == null ? '–' : v.toFixed(3) },
      // dashed as well as blue, so the two lines differ without colour
      { label: 'Accuracy', scale: 'accuracy', stroke: '#1d4ed8', width: 2, dash: [6, 4], value: (_, v) => v == null ? '–' : `${(v * 100).toFixed(1)}%` }
    ],
    axes: [
      { label: 'epoch' },
      { scale: 'loss', label: 'loss' },
      { scale: 'accuracy', side: 1, label: 'accuracy', grid: { show: false }, values: (_, ticks) => ticks.map((v) => `${Math.round(v * 100)}%`) }
    ]
  }
}

/** @param {{ curve: Curve }} props */
export function TrainingChart ({ curve }) {
  const box = useRef(/** @type {HTMLDivElement | null} */ (null))
  const chart = useRef(/** @type {UPlot | null} */ (null))
  // the newest curve, for a chart that appears after uPlot has loaded
  const latest = useRef(curve)
  latest.current = curve

  useEffect(() => {
    const element = box.current
    if (!element) return
    let gone = false
    /** @type {ResizeObserver | undefined} */
    let resize
    loadUPlot().then((UPlot) => {
      if (gone) return
      const plot = new UPlot(chartOptions(element.clientWidth), data(latest.current), element)
      chart.current = plot
      resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, element.clientWidth), height: HEIGHT }))
      resize.observe(element)
    }, () => {
      element.textContent = 'The chart could not be loaded; the figures are below.'
    })
    return () => {
      gone = true
      resize?.disconnect()
      chart.current?.destroy()
      chart.current = null
    }
  }, [])

  useEffect(() => { chart.current?.setData(data(curve)) }, [curve])

  return html`<div class="chart" ref=${box} aria-hidden="true"></div>`
}
