// User-made detectors: create from anchor images, view matches with a threshold, apply as a label.

import { cards, get, patch, post, postForm } from "../api.js";
import { clear, h, toast } from "../dom.js";
import { navigate } from "../app.js";
import { cardGrid } from "../cards.js";
import { disabledNote, feature } from "../capabilities.js";

export async function detectorsView(page) {
  const list = await get("/detectors");
  const name = h("input", { id: "detector-name", required: true, maxlength: "100", placeholder: "Red bicycle" });
  const anchors = h("input", { id: "detector-anchors", type: "file", accept: "image/*", multiple: true, required: true });
  const threshold = h("input", { id: "detector-threshold", type: "number", step: "0.01", min: "-1", max: "1", placeholder: "default" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create detector");
  const form = h("form", { class: "panel form-grid", "aria-label": "New detector" }, h("h2", {}, "New detector"),
    h("label", { for: "detector-name" }, "Name (becomes the label)"), name,
    h("label", { for: "detector-anchors" }, "Anchor images (the object, centred)"), anchors,
    h("label", { for: "detector-threshold" }, "Similarity threshold"), threshold, submit);
  feature("detectors").then((state) => {
    if (state.available !== false) return;
    for (const control of form.querySelectorAll("input, button")) control.disabled = true;
    form.append(disabledNote(state, "detectors"));
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData();
    data.append("name", name.value);
    for (const file of anchors.files) data.append("anchors", file, file.name);
    if (threshold.value) data.append("threshold", threshold.value);
    submit.disabled = true;
    try {
      const detector = await postForm("/detectors", data);
      navigate(`/detector/${detector.id}`);
    } catch (error) {
      toast(error.message, "error");
      submit.disabled = false;
    }
  });
  const items = list.length
    ? h("ul", { class: "tiles" }, list.map((d) => h("li", {}, h("a", { class: "tile", href: `#/detector/${d.id}` },
      h("strong", {}, d.name), h("span", { class: "muted" }, `label “${d.label}” · ${d.prototypes} prototype(s)`),
      h("span", { class: "badge" }, `threshold ${d.threshold.toFixed(2)} · ${d.visibility}`)))))
    : h("p", { class: "muted" }, "No detectors yet. A detector finds a specific object of yours (a logo, a product) from a few example images.");
  page.append(h("div", { class: "page-head" }, h("h1", {}, "Detectors")), h("div", { class: "two-col" }, h("div", {}, items), form));
}

export async function detectorView(page, { match }) {
  const id = Number(match[1]);
  const detector = await get(`/detectors/${id}`);
  const me = await get("/users/me");
  const owner = me.id === detector.owner_id || me.role === "admin";
  const slider = h("input", { id: "threshold", type: "range", min: "-1", max: "1", step: "0.01", value: String(detector.threshold) });
  const value = h("output", { for: "threshold" }, detector.threshold.toFixed(2));
  const save = h("button", { type: "button", hidden: !owner }, "Save threshold");
  const apply = h("button", { type: "button", class: "primary" }, "Apply: label my matching assets");
  const body = h("div", {});
  page.append(h("p", { class: "crumbs" }, h("a", { href: "#/detectors" }, "← Detectors")),
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, detector.name),
      h("p", { class: "muted" }, `Label “${detector.label}” · ${detector.prototypes} prototype(s) · model ${detector.model}`)),
    h("div", { class: "actions" }, apply)),
    h("div", { class: "panel inline threshold" }, h("label", { for: "threshold" }, "Threshold"), slider, value, save), body);

  let timer = null;
  async function load() {
    const found = await get(`/detectors/${id}/matches`, { threshold: slider.value });
    const assets = await Promise.all(found.slice(0, 60).map((m) => get(`/assets/${m.asset_id}`).catch(() => null)));
    const items = found.slice(0, 60).map((m, i) => ({ asset: assets[i], score: m.score, matched: m.matched })).filter((i) => i.asset);
    const summaries = await cards(items.map((i) => i.asset.id));
    clear(body);
    body.append(h("p", { class: "total" }, `${found.length} match${found.length === 1 ? "" : "es"}`),
      items.length ? cardGrid(items, summaries, { extra: (_, item) => h("span", { class: "muted" }, item.matched === "region" ? "in a region" : "whole image") })
        : h("p", { class: "muted" }, "No asset reaches this threshold."));
  }
  slider.addEventListener("input", () => {
    value.textContent = Number(slider.value).toFixed(2);
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((e) => toast(e.message, "error")), 250);
  });
  save.addEventListener("click", async () => {
    await patch(`/detectors/${id}`, { threshold: Number(slider.value) });
    toast("Threshold saved.");
  });
  apply.addEventListener("click", async () => {
    const labelled = await post(`/detectors/${id}/apply`, undefined, { threshold: slider.value });
    toast(`${labelled.length} asset(s) labelled “${detector.label}”.`);
    navigate("/library", new URLSearchParams({ label: detector.label }));
  });
  await load();
  return () => clearTimeout(timer);
}
