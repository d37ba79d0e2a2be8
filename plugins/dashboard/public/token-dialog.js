// @ts-check
/** The admin token prompt: a modal dialog with a password field, shown whenever an admin action needs the token. */
import { useEffect, useRef, useState } from '../vendor/hooks.js'
import { admin } from './admin.js'
import { html } from './html.js'
import { useStore } from './store.js'

/** Where the server keeps the admin token (its DATA_DIR/admin-token), as the page was given it; '' when ADMIN_TOKEN sets it. */
const TOKEN_FILE = document.querySelector('meta[name="doorsense-admin-token-file"]')?.getAttribute('content') ?? ''

function WhereTheTokenIs () {
  if (TOKEN_FILE === '') return html`It is the server's <code>ADMIN_TOKEN</code> setting.`
  return html`It is in <code class="path">${TOKEN_FILE}</code> on the server (ADMIN_TOKEN is not set there).`
}

export function TokenDialog () {
  const { prompt } = useStore(admin)
  const dialog = useRef(/** @type {HTMLDialogElement | null} */ (null))
  const input = useRef(/** @type {HTMLInputElement | null} */ (null))
  const [problem, setProblem] = useState('')

  useEffect(() => {
    const element = dialog.current
    if (!element) return
    if (prompt && !element.open) {
      setProblem('')
      element.showModal()
      input.current?.focus()
    } else if (!prompt && element.open) {
      element.close()
    }
  }, [prompt])

  /** @param {SubmitEvent} event */
  const submit = (event) => {
    event.preventDefault()
    const token = input.current?.value.trim() ?? ''
    if (token === '') {
      setProblem('Enter the token first.')
      return
    }
    if (input.current) input.current.value = ''
    prompt?.submit(token)
  }
  /** @param {Event} event Escape: the same as Cancel */
  const onCancel = (event) => {
    event.preventDefault()
    prompt?.cancel()
  }

  return html`
    <dialog ref=${dialog} class="token-dialog" aria-labelledby="token-title" aria-describedby="token-why" onCancel=${onCancel}>
      <form method="dialog" onSubmit=${submit}>
        <h2 id="token-title">Admin token</h2>
        <p id="token-why" class="prompt-message" role="alert">${prompt?.message ?? ''}</p>
        <p class="hint token-where"><${WhereTheTokenIs} /> It is kept in this tab only, until you sign out or close it.</p>
        <label for="token-input">Token</label>
        <input id="token-input" ref=${input} type="password" name="token" autocomplete="off" spellcheck="false" required />
        ${problem && html`<p class="problem" role="alert">${problem}</p>`}
        <div class="actions">
          <button type="submit" class="primary">Sign in</button>
          <button type="button" onClick=${() => prompt?.cancel()}>Cancel</button>
        </div>
      </form>
    </dialog>`
}

export function AdminButton () {
  const { signedIn } = useStore(admin)
  if (signedIn) return html`<button type="button" class="admin-button" onClick=${() => admin.forget()}>Sign out admin</button>`
  const signIn = () => admin.ask('Sign in to calibrate doors and manage models.').catch(() => {})
  return html`<button type="button" class="admin-button" onClick=${signIn}>Sign in as admin</button>`
}
