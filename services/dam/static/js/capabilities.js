// What works with the models installed now (GET /api/capabilities, asked from the annotation service):
// a feature whose model is absent is shown disabled with the one command that enables it.

import { get } from "./api.js";
import { h } from "./dom.js";

let pending = null;

export function capabilities() {
  if (!pending) {
    pending = get("/capabilities").catch(() => null);
    // Models may be installed while the UI is open: ask again after a while.
    setTimeout(() => { pending = null; }, 20000);
  }
  return pending;
}

export function forgetCapabilities() { pending = null; }

// The feature's state: { available: true|false|null, command, reason, label }.
export async function feature(name) {
  const caps = await capabilities();
  return caps?.features?.[name] || { available: null, command: "", reason: "", label: name };
}

// "Needs a model: run `cmd`" — shown next to (or instead of) a disabled control.
export function disabledNote(state, name) {
  return h("p", { class: "disabled-note", role: "note", "data-disabled-feature": name },
    `${state.label} needs a model that is not installed (${state.reason}). Enable it with `,
    h("code", { "data-command": state.command }, state.command || "maam models list"), ".");
}

// Disables a control (button or link) and puts the note after it; returns whether the feature is off.
export async function gate(control, name) {
  const state = await feature(name);
  if (state.available !== false) return false;
  control.setAttribute("aria-disabled", "true");
  control.classList.add("disabled");
  if (control.tagName === "BUTTON") control.disabled = true;
  if (control.tagName === "A") { control.removeAttribute("href"); control.tabIndex = -1; }
  control.title = `Needs: ${state.command}`;
  control.after(disabledNote(state, name));
  return true;
}
