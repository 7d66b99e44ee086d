// Asset cards: thumbnail (blurred when sensitive, until revealed), title, caption, labels, annotation state.

import { blobUrl } from "./api.js";
import { h, highlighted, stateBadge } from "./dom.js";
import { reveal, sensitiveReasons, shouldBlur } from "./prefs.js";

export function thumbnail(asset, size = 256) {
  const img = h("img", { alt: asset.title || asset.filename || `asset ${asset.id}`, loading: "lazy", decoding: "async" });
  if (asset.kind === "image" || asset.kind === "video") {
    blobUrl(`/assets/${asset.id}/thumbnail?size=${size}`).then((url) => { img.src = url; }).catch(() => {
      img.replaceWith(h("div", { class: "thumb-missing" }, "No preview"));
    });
    return img;
  }
  return h("div", { class: "thumb-missing" }, asset.kind === "model3d" ? "3D model" : asset.kind);
}

// A blur shield over `media`; the button removes it and remembers the choice for this session.
export function sensitiveShield(asset, summary, media, onReveal) {
  const wrap = h("div", { class: "shielded" }, media);
  if (!shouldBlur(asset.id, summary)) return wrap;
  wrap.classList.add("blurred");
  const reasons = sensitiveReasons(summary).join(" · ");
  const button = h("button", { class: "reveal", type: "button", "data-reveal": asset.id,
    "aria-label": `Reveal ${reasons} content: ${asset.title}` }, "Reveal");
  const veil = h("div", { class: "veil" }, h("span", { class: "veil-reason" }, reasons), button);
  button.addEventListener("click", (event) => {
    event.preventDefault();
    event.stopPropagation();
    reveal(asset.id);
    wrap.classList.remove("blurred");
    veil.remove();
    if (onReveal) onReveal();
  });
  wrap.append(veil);
  return wrap;
}

export function chips(summary, asset) {
  const list = h("ul", { class: "chips", "aria-label": "Labels" });
  const add = (text, cls) => list.append(h("li", { class: `chip ${cls || ""}` }, text));
  if (summary) {
    if (summary.nsfw) add("NSFW", "warn");
    if (summary.disturbing) add("Disturbing", "warn");
    if (summary.meme) add("Meme", "info");
    if (summary.faces) add(`${summary.faces} face${summary.faces > 1 ? "s" : ""}`, "info");
    for (const label of summary.labels || []) add(label, "label");
    for (const object of (summary.objects || []).slice(0, 6)) add(object, "object");
  }
  for (const tag of (asset.tags || []).slice(0, 4)) add(`#${tag}`, "tag");
  return list;
}

export function assetCard(asset, summary, { score, highlights, extra } = {}) {
  const caption = summary && summary.caption;
  // The picture link is a mouse shortcut (skipped by Tab); the title is the link for keyboards and screen
  // readers. The Reveal button sits beside the picture link, never inside it.
  const media = sensitiveShield(asset, summary, h("a", { class: "thumb-link", href: `#/asset/${asset.id}`,
    tabindex: "-1", "aria-hidden": "true" }, thumbnail(asset)));
  const link = h("a", { class: "card-link card-title", href: `#/asset/${asset.id}` }, asset.title || asset.filename);
  const body = h("div", { class: "card-body" },
    caption ? h("p", { class: "caption" }, caption) : null,
    highlights && Object.keys(highlights).length
      ? h("p", { class: "highlight" }, highlighted(Object.values(highlights)[0][0])) : null,
    chips(summary, asset),
    h("div", { class: "card-meta" }, stateBadge(asset.annotation_state, asset.annotation_failed_models),
      asset.kind !== "image" ? h("span", { class: "kind" }, asset.kind) : null,
      score !== undefined && score !== null ? h("span", { class: "score", title: "similarity" }, score.toFixed(3)) : null,
      extra || null));
  return h("article", { class: "card", dataset: { id: asset.id, state: asset.annotation_state } }, media, link, body);
}

export function cardGrid(items, summaries, options = {}) {
  const grid = h("div", { class: "grid", role: "list" });
  for (const item of items) {
    const asset = item.asset || item;
    const card = assetCard(asset, summaries.get(asset.id), {
      score: item.score, highlights: item.highlights, extra: options.extra ? options.extra(asset, item) : null });
    card.setAttribute("role", "listitem");
    grid.append(card);
  }
  return grid;
}

// Re-renders cards whose annotation state or summary changed (live updates without losing the page).
export function refreshCards(grid, items, summaries) {
  for (const item of items) {
    const asset = item.asset || item;
    const old = grid.querySelector(`.card[data-id="${asset.id}"]`);
    if (!old) continue;
    const fresh = assetCard(asset, summaries.get(asset.id), { score: item.score, highlights: item.highlights });
    fresh.setAttribute("role", "listitem");
    if (old.outerHTML.replace(/src="[^"]*"/g, "") === fresh.outerHTML.replace(/src="[^"]*"/g, "")) continue;
    const focused = old.contains(document.activeElement);
    old.replaceWith(fresh);
    if (focused) fresh.querySelector(".card-link").focus();
  }
}

// States after which nothing changes without a new request: anything else is worth polling for.
export const PENDING = new Set(["pending", "running"]);
