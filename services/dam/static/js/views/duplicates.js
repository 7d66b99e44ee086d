// Near-duplicates: the asset page's panel, the upload list's notice, and the library-wide review
// (#/duplicates: groups; keep one and delete the others, or "not duplicates"; one group or many at once).

import { get, post } from "../api.js";
import { clear, h, toast } from "../dom.js";
import { thumbnail } from "../cards.js";

const POLL_MS = 2000;
const SETTLED = new Set(["indexed", "failed"]);

const pct = (score) => `${Math.round(score * 100)} %`;
const seconds = (v) => `${Number(v).toFixed(1)} s`;

function segmentText(segments) {
  if (!segments || !segments.length) return null;
  return h("ul", { class: "dup-segments", "aria-label": "Matching segments" }, segments.map((s) =>
    h("li", {}, `${seconds(s.start)}–${seconds(s.end)} here ↔ ${seconds(s.other_start)}–${seconds(s.other_end)} there`)));
}

function assetLink(asset) {
  return h("a", { href: `#/asset/${asset.id}`, class: "dup-title" }, asset.title || asset.filename || `asset #${asset.id}`);
}

// Polls `check` every POLL_MS until it returns true or the returned stop() is called.
function poll(check) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    let done = false;
    try { done = await check(); } catch { /* a transient error: try again */ }
    if (!done && !stopped) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

function stateLine(body) {
  if (body.state === "waiting") return "Checked for near-duplicates once annotation has finished…";
  if (body.state === "queued" || body.state === "removing") return "Checking for near-duplicates…";
  if (body.state === "failed") return `Could not be checked for near-duplicates: ${body.error || "refused"}`;
  return body.duplicates.length ? null : "No near-duplicates in your library.";
}

// The asset page's "Near duplicates" panel; returns a function that stops its polling.
export function duplicatesPanel(container, id) {
  const panel = h("section", { class: "panel dup-panel", "aria-label": "Near duplicates", "data-panel": "duplicates" },
    h("h2", {}, "Near duplicates"));
  const body = h("div", { class: "dup-body" }, h("p", { class: "muted" }, "Loading…"));
  panel.append(body);
  container.append(panel);
  return poll(async () => {
    const reply = await get(`/assets/${id}/duplicates`);
    if (!reply.enabled) { panel.remove(); return true; }  // NDD not configured: no panel at all
    clear(body);
    const line = stateLine(reply);
    if (line) body.append(h("p", { class: "muted", "data-state": reply.state }, line));
    if (reply.duplicates.length) {
      body.append(h("ul", { class: "dup-list" }, reply.duplicates.map((d) =>
        h("li", { class: "dup-item", dataset: { assetId: d.asset.id } },
          h("a", { href: `#/asset/${d.asset.id}`, class: "dup-thumb", "aria-hidden": "true", tabindex: "-1" }, thumbnail(d.asset, 128)),
          h("div", {}, assetLink(d.asset),
            h("div", { class: "dup-score", "data-score": d.score }, `similarity ${pct(d.score)}`),
            d.asset.mine ? null : h("div", { class: "muted" }, "public, another user's"),
            segmentText(d.segments))))));
      body.append(h("p", {}, h("a", { href: "#/duplicates" }, "Review all duplicates")));
    }
    return SETTLED.has(reply.state);
  });
}

// After an upload: waits until NDD has checked the new asset and tells the user if it has near-duplicates.
export function watchUpload(asset, status) {
  return poll(async () => {
    const reply = await get(`/assets/${asset.id}/duplicates`);
    if (!reply.enabled) return true;
    if (!SETTLED.has(reply.state)) return false;
    const mine = reply.duplicates.filter((d) => d.asset.mine);
    if (mine.length) {
      const best = mine[0];
      status.append(h("span", { class: "dup-notice", role: "status", "data-duplicate-of": best.asset.id },
        " · Near-duplicate of ", assetLink(best.asset), ` (${pct(best.score)})`,
        mine.length > 1 ? ` and ${mine.length - 1} more` : "", " — ", h("a", { href: "#/duplicates" }, "review")));
      toast(`“${asset.title || asset.filename}” looks like a near-duplicate of “${best.asset.title || best.asset.filename}”.`);
    }
    return true;
  });
}

function groupCard(group, index, selection, onChange) {
  // The asset kept by default: the user's oldest in the group (ids grow with time).
  const own = group.assets.filter((a) => a.mine);
  const keepDefault = (own[0] || group.assets[0]).id;
  const name = `keep-${index}`;
  const pick = h("input", { type: "checkbox", "aria-label": `Select group ${index + 1}`, dataset: { select: index } });
  pick.addEventListener("change", () => { if (pick.checked) selection.add(index); else selection.delete(index); onChange(); });
  const figures = group.assets.map((a) => {
    const radio = h("input", { type: "radio", name, value: a.id, checked: a.id === keepDefault, id: `${name}-${a.id}` });
    return h("figure", { class: "dup-member", dataset: { assetId: a.id } },
      h("a", { href: `#/asset/${a.id}`, class: "dup-thumb" }, thumbnail(a, 256)),
      h("figcaption", {}, assetLink(a),
        h("span", { class: "muted" }, `${a.kind}${a.width ? ` · ${a.width}×${a.height}` : ""}${a.mine ? "" : " · another user's (public)"}`),
        h("label", { for: `${name}-${a.id}`, class: "toggle" }, radio, " Keep")));
  });
  const card = h("section", { class: "panel dup-group", dataset: { group: index }, "aria-label": `Duplicate group ${index + 1}` },
    h("div", { class: "dup-group-head" }, h("label", { class: "toggle" }, pick, ` Group ${index + 1}`),
      h("span", { class: "muted" }, `${group.assets.length} assets · best similarity ${pct(group.best_score)}`)),
    h("div", { class: "dup-members" }, figures));
  const resolution = () => {
    const keep = Number(card.querySelector(`input[name="${name}"]:checked`).value);
    return { keep, delete: group.assets.filter((a) => a.mine && a.id !== keep).map((a) => a.id) };
  };
  return { card, resolution, ids: group.assets.map((a) => a.id) };
}

export async function duplicatesView(page) {
  const list = h("div", { class: "dup-groups" });
  const bar = h("div", { class: "actions dup-bulk" });
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  page.append(h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Duplicates"), summary), bar), list);
  let cards = [];
  const selection = new Set();

  async function resolve(chosen) {
    const groups = chosen.map((c) => c.resolution()).filter((r) => r.delete.length);
    if (!groups.length) { toast("Nothing to delete: the other assets of these groups are not yours.", "error"); return; }
    const count = groups.reduce((n, g) => n + g.delete.length, 0);
    if (!window.confirm(`Delete ${count} asset${count === 1 ? "" : "s"} and keep one of each group?`)) return;
    const reply = await post("/duplicates/resolve", { groups });
    toast(`Deleted ${reply.deleted.length} asset${reply.deleted.length === 1 ? "" : "s"}.`);
    await load();
  }
  async function dismiss(chosen) {
    await post("/duplicates/dismiss", { groups: chosen.map((c) => c.ids) });
    toast(`${chosen.length} group${chosen.length === 1 ? "" : "s"} marked as not duplicates.`);
    await load();
  }
  const keepButton = h("button", { type: "button", class: "primary", disabled: true, "data-action": "resolve-selected" },
    "Keep chosen, delete others");
  const dismissButton = h("button", { type: "button", disabled: true, "data-action": "dismiss-selected" }, "Not duplicates");
  keepButton.addEventListener("click", () => resolve([...selection].map((i) => cards[i])).catch((e) => toast(e.message, "error")));
  dismissButton.addEventListener("click", () => dismiss([...selection].map((i) => cards[i])).catch((e) => toast(e.message, "error")));
  bar.append(h("span", { class: "muted" }, "Selected groups:"), keepButton, dismissButton);
  const update = () => { keepButton.disabled = dismissButton.disabled = selection.size === 0; };

  async function load() {
    const reply = await get("/duplicates", { limit: 100 });
    clear(list);
    selection.clear();
    update();
    if (!reply.enabled) {
      summary.textContent = "Near-duplicate detection is not configured on this server (MAAM_DAM__NDD_URL).";
      return;
    }
    summary.textContent = reply.total ? `${reply.total} group${reply.total === 1 ? "" : "s"} of near-duplicates` : "";
    if (!reply.groups.length) {
      list.append(h("p", { class: "empty" }, "No near-duplicates in your library."));
      return;
    }
    cards = reply.groups.map((g, i) => groupCard(g, i, selection, update));
    for (const c of cards) {
      const keep = h("button", { type: "button", class: "small primary", "data-action": "resolve" }, "Keep chosen, delete others");
      const no = h("button", { type: "button", class: "small", "data-action": "dismiss" }, "Not duplicates");
      keep.addEventListener("click", () => resolve([c]).catch((e) => toast(e.message, "error")));
      no.addEventListener("click", () => dismiss([c]).catch((e) => toast(e.message, "error")));
      c.card.append(h("div", { class: "actions" }, keep, no));
      list.append(c.card);
    }
  }
  await load();
}
