// Tiny DOM helpers: h() builds elements; text always goes in as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Search highlights arrive as HTML-escaped text with <mark> tags: rebuild them without innerHTML.
export function highlighted(fragment) {
  const out = document.createDocumentFragment();
  const parts = String(fragment).split(/(<mark>|<\/mark>)/);
  let inMark = false;
  for (const part of parts) {
    if (part === "<mark>") { inMark = true; continue; }
    if (part === "</mark>") { inMark = false; continue; }
    const text = new DOMParser().parseFromString(`<!doctype html><body>${part}`, "text/html").body.textContent;
    out.append(inMark ? h("mark", {}, text) : document.createTextNode(text));
  }
  return out;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", "data-at": String(Date.now()) }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

// Toasts belong to the page they were raised on: a page change drops those older than `olderThanMs` (a toast
// raised just before the navigation, "Deleted.", stays), sign-out drops all.
export function clearToasts(olderThanMs = 0) {
  const now = Date.now();
  for (const item of document.querySelectorAll("#toasts .toast")) {
    if (now - Number(item.dataset.at || 0) >= olderThanMs) item.remove();
  }
}

export function formatBytes(n) {
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function formatDate(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// A modal dialog: focus moves in, Escape (native <dialog>) closes it, focus returns to the opener.
export function openDialog(title, body, { onClose } = {}) {
  const opener = document.activeElement;
  const closeButton = h("button", { class: "icon-button", type: "button", "aria-label": "Close" }, "×");
  const dialog = h("dialog", { class: "dialog", "aria-label": title },
    h("div", { class: "dialog-head" }, h("h2", {}, title), closeButton), body);
  closeButton.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.focus) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

export function stateBadge(state, failedModels = 0) {
  const names = { pending: "Queued", running: "Annotating…", done: "Annotated", failed: "Annotation failed",
    skipped: "Not annotated" };
  let label = names[state] || state;
  if (state === "done" && failedModels > 0) label = `Annotated (${failedModels} model${failedModels === 1 ? "" : "s"} failed)`;
  return h("span", { class: `badge state-${state}`, "data-state": state, "data-failed": failedModels || 0 }, label);
}
