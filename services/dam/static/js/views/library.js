// The library: text search, faceted sidebar with counts, similar / region search results, live states.

import { cards, get } from "../api.js";
import { append, clear, h } from "../dom.js";
import { navigate } from "../app.js";
import { cardGrid, PENDING, refreshCards } from "../cards.js";
import { bulkSelection } from "./bulk.js";
import { isLive, liveUpdates } from "../live.js";

const PAGE_SIZE = 24;
// Only while the live-update stream is down (live.js); otherwise the server tells what changed.
const POLL_MS = 5000;
const LIVE_DEBOUNCE_MS = 400;

// Sidebar facets: API facet name -> how a click filters.
const FACETS = [
  { name: "kind", title: "Type", param: "type" },
  { name: "objects", title: "Objects", param: "objects", multi: true },
  { name: "nsfw", title: "NSFW", param: "nsfw", tri: true },
  { name: "meme", title: "Meme", param: "meme", tri: true },
  { name: "month", title: "Uploaded", param: "month" },
  { name: "annotation_types", title: "Annotations", param: "annotation", multi: true },
  { name: "people", title: "People", param: "person" },
];
// Readable names of the annotation types (task names).
const TASK_NAMES = { object_detection: "Objects", face_recognition: "Faces", ocr: "Text (OCR)", captioning: "Captions",
  nsfw: "NSFW check", disturbing: "Disturbing-content check", meme: "Meme check", saliency: "Saliency",
  action_recognition: "Actions", cross_modal_embedding: "Visual embedding", region_features: "Region features" };
// Filters the API has without a facet: shown as two-way toggles.
const TOGGLES = [
  { param: "faces", title: "Faces", values: [["true", "With faces"], ["false", "Without faces"]] },
  { param: "text", title: "Text in image", values: [["true", "Has text"], ["false", "No text"]] },
];
const TRI = { true: "only", false: "exclude" };
let sidebarOpen = false;
const TRI_NAMES = { true: "Yes", false: "No", unknown: "Not yet known" };

function monthRange(month) {
  const [y, m] = month.split("-").map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return [`${month}-01`, `${month}-${String(last).padStart(2, "0")}`];
}

function apiParams(params) {
  const out = {};
  for (const key of ["q", "type", "nsfw", "meme", "disturbing", "similar_to", "box", "project", "owner", "faces", "text", "person"]) {
    if (params.get(key)) out[key] = params.get(key);
  }
  if (params.getAll("objects").length) out.objects = params.getAll("objects");
  if (params.getAll("label").length) out.label = params.getAll("label");
  if (params.getAll("annotation").length) out.annotation = params.getAll("annotation");
  if (params.get("month")) [out.uploaded_from, out.uploaded_to] = monthRange(params.get("month"));
  out.page = params.get("page") || 1;
  out.size = PAGE_SIZE;
  return out;
}

function isActive(params, facet, key) {
  if (!facet.param) return false;
  if (facet.tri) return params.get(facet.param) === TRI[key];
  return params.getAll(facet.param).includes(key);
}

function toggled(params, facet, key) {
  const next = new URLSearchParams(params);
  next.delete("page");
  if (facet.tri) {
    if (next.get(facet.param) === TRI[key]) next.delete(facet.param); else next.set(facet.param, TRI[key]);
  } else if (facet.multi) {
    const values = next.getAll(facet.param);
    next.delete(facet.param);
    const kept = values.includes(key) ? values.filter((v) => v !== key) : [...values, key];
    for (const v of kept) next.append(facet.param, v);
  } else if (next.get(facet.param) === key) {
    next.delete(facet.param);
  } else {
    next.set(facet.param, key);
  }
  return next;
}

function facetLabel(facet, key, people) {
  if (facet.tri) return TRI_NAMES[key] || key;
  if (facet.name === "annotation_types") return TASK_NAMES[key] || key;
  if (facet.name === "people") return people.get(Number(key)) || `Unnamed person ${key}`;
  return key;
}

function facetSidebar(facets, params, people = new Map()) {
  // A disclosure, closed at first on narrow screens so results come first there.
  const side = h("details", { class: "facets", open: window.matchMedia("(min-width: 901px)").matches || sidebarOpen },
    h("summary", {}, "Filters"));
  side.addEventListener("toggle", () => { sidebarOpen = side.open; });
  const groups = h("div", { class: "facet-groups" });
  for (const facet of FACETS) {
    const values = Object.entries(facets[facet.name] || {});
    if (!values.length) continue;
    if (facet.tri && !values.some(([k]) => TRI[k])) continue;
    const list = h("ul", {});
    for (const [key, count] of values) {
      const label = facetLabel(facet, key, people);
      if (!facet.param || (facet.tri && !TRI[key])) {
        list.append(h("li", {}, h("span", { class: "facet-static" }, h("span", {}, label), h("span", { class: "count" }, count))));
        continue;
      }
      const active = isActive(params, facet, key);
      const button = h("button", { type: "button", class: "facet", "aria-pressed": active ? "true" : "false",
        dataset: { facet: facet.name, value: key } }, h("span", {}, label), h("span", { class: "count" }, count));
      button.addEventListener("click", () => navigate("/library", toggled(params, facet, key)));
      list.append(h("li", {}, button));
    }
    groups.append(h("section", { class: "facet-group" }, h("h2", {}, facet.title), list));
  }
  for (const toggle of TOGGLES) {
    const list = h("ul", {}, toggle.values.map(([value, label]) => {
      const active = params.get(toggle.param) === value;
      const button = h("button", { type: "button", class: "facet", "aria-pressed": active ? "true" : "false",
        dataset: { facet: toggle.param, value } }, h("span", {}, label));
      button.addEventListener("click", () => {
        const next = new URLSearchParams(params);
        next.delete("page");
        if (active) next.delete(toggle.param); else next.set(toggle.param, value);
        navigate("/library", next);
      });
      return h("li", {}, button);
    }));
    groups.append(h("section", { class: "facet-group" }, h("h2", {}, toggle.title), list));
  }
  side.append(groups);
  return h("aside", { class: "sidebar", "aria-label": "Filters" }, side);
}

function activeFilters(params) {
  const bar = h("div", { class: "active-filters" });
  const remove = (key, value) => {
    const next = new URLSearchParams(params);
    const kept = next.getAll(key).filter((v) => v !== value);
    next.delete(key);
    next.delete("page");
    if (key === "similar_to") next.delete("box");
    for (const v of kept) next.append(key, v);
    navigate("/library", next);
  };
  const names = { type: "Type", objects: "Object", label: "Label", nsfw: "NSFW", meme: "Meme", month: "Month",
    project: "Project", disturbing: "Disturbing", annotation: "Annotation", faces: "Faces", text: "Text" };
  for (const [key, value] of params) {
    if (!names[key]) continue;
    const chip = h("button", { type: "button", class: "filter-chip", "aria-label": `Remove filter ${names[key]}: ${value}` },
      `${names[key]}: ${value}`, h("span", { "aria-hidden": "true" }, " ×"));
    chip.addEventListener("click", () => remove(key, value));
    bar.append(chip);
  }
  return bar.childElementCount ? bar : null;
}

function similarBanner(params) {
  const id = params.get("similar_to");
  if (!id) return null;
  const box = params.get("box");
  const clearButton = h("button", { type: "button", class: "ghost" }, "Clear");
  clearButton.addEventListener("click", () => {
    const next = new URLSearchParams(params);
    next.delete("similar_to");
    next.delete("box");
    navigate("/library", next);
  });
  // Named by its title once known (the id until then, or if the asset cannot be read).
  const link = h("a", { href: `#/asset/${id}` }, `asset #${id}`);
  get(`/assets/${id}`).then((asset) => { link.textContent = asset.title || asset.filename || link.textContent; })
    .catch(() => {});
  return h("div", { class: "banner", "data-mode": box ? "region" : "similar" },
    h("span", {}, box ? "Assets similar to a region of " : "Assets visually similar to ", link,
      box ? ` (box ${box.split(",").map((v) => Number(v).toFixed(2)).join(", ")})` : ""),
    clearButton);
}

function pager(result, params) {
  const pages = Math.ceil(result.total / result.size);
  if (pages <= 1) return null;
  const go = (p) => { const next = new URLSearchParams(params); next.set("page", p); navigate("/library", next); };
  const prev = h("button", { type: "button", disabled: result.page <= 1 }, "← Previous");
  const next = h("button", { type: "button", disabled: result.page >= pages }, "Next →");
  prev.addEventListener("click", () => go(result.page - 1));
  next.addEventListener("click", () => go(result.page + 1));
  return h("nav", { class: "pager", "aria-label": "Pages" }, prev, h("span", {}, `Page ${result.page} of ${pages}`), next);
}

export async function libraryView(page, { params }) {
  const query = h("input", { type: "search", name: "q", placeholder: "Search titles, tags, captions, text in images…",
    "aria-label": "Search", value: params.get("q") || "" });
  const form = h("form", { class: "searchbar", role: "search" }, query, h("button", { type: "submit", class: "primary" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams(params);
    next.delete("page");
    if (query.value.trim()) next.set("q", query.value.trim()); else next.delete("q");
    navigate("/library", next);
  });
  const results = h("div", { class: "results", "aria-live": "polite", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const layout = h("div", { class: "library" }, h("div", { class: "sidebar-slot" }), results);
  const selection = bulkSelection(() => { clearTimeout(timer); load(true).catch(() => {}); });
  append(page, [h("div", { class: "page-head" }, h("h1", {}, "Library"), form), similarBanner(params), activeFilters(params),
    selection.bar, layout]);

  let timer = null;
  let shownOrder = null;
  let stopped = false;
  let grid = null;
  let lastFacets = "";
  let people = null; // person id -> name, asked once the people facet has values

  async function personNames(facets) {
    if (people || !Object.keys(facets.people || {}).length) return people || new Map();
    const persons = await get("/people").catch(() => []);
    people = new Map(persons.filter((p) => p.name).map((p) => [p.id, p.name]));
    return people;
  }

  async function load(first) {
    const result = await get("/search", apiParams(params));
    const names = await personNames(result.facets);
    // Only a kNN's score is a similarity; a text match's rank is no number to show.
    if (!result.space) result.hits = result.hits.map((hit) => ({ ...hit, score: null }));
    const summaries = await cards(result.hits.map((hit) => hit.asset.id));
    if (stopped) return;
    // A new asset, or one that left the results: the grid is drawn again, not only its cards.
    const order = result.hits.map((hit) => hit.asset.id).join(",");
    if (order !== shownOrder) first = true;
    shownOrder = order;
    if (first) {
      layout.firstChild.replaceWith(facetSidebar(result.facets, params, names));
      lastFacets = JSON.stringify(result.facets);
      clear(results);
      results.setAttribute("aria-busy", "false");
      const word = result.total === 1 ? "asset" : "assets";
      results.append(h("p", { class: "total", "data-total": result.total, "data-space": result.space || "" },
        `${result.total}${result.total_relation === "gte" ? "+" : ""} ${word}`,
        result.space ? h("span", { class: "muted" }, ` · compared in ${result.space}`) : null));
      if (!result.hits.length) {
        results.append(h("div", { class: "empty" }, h("p", {}, "Nothing here yet."),
          h("a", { class: "button primary", href: "#/upload" }, "Upload media")));
        return;
      }
      grid = cardGrid(result.hits, summaries);
      selection.decorate(grid);
      append(results, [grid, pager(result, params)]);
    } else if (grid) {
      refreshCards(grid, result.hits, summaries);
      selection.decorate(grid);
      // New labels change the facets too (left alone when unchanged, so keyboard focus stays put).
      const facets = JSON.stringify(result.facets);
      if (facets !== lastFacets) layout.firstChild.replaceWith(facetSidebar(result.facets, params, names));
      lastFacets = facets;
    }
    const busy = result.hits.some((hit) => PENDING.has(hit.asset.annotation_state));
    if (busy && !isLive()) {
      timer = setTimeout(() => load(false).catch(() => {}), POLL_MS);
    }
  }
  // Assets shown that changed are redrawn; another asset may be a new one that belongs on this page, or one
  // whose change moves it into these results: the search runs again (load redraws only what differs).
  const unlisten = liveUpdates(() => {
    clearTimeout(timer);
    timer = setTimeout(() => load(false).catch(() => {}), LIVE_DEBOUNCE_MS);
  });
  await load(true);
  return () => { stopped = true; clearTimeout(timer); unlisten(); };
}
