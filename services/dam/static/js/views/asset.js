// One asset: the media with every annotation drawn over it (objects, faces, text, saliency), flags,
// captions, OCR text, a video timeline, "find similar" and region search by dragging a box.

import { blobUrl, cards, del, get, post } from "../api.js";
import { clear, formatBytes, formatDate, h, stateBadge, toast } from "../dom.js";
import { navigate } from "../app.js";
import { chips, PENDING, sensitiveShield } from "../cards.js";
import { gate } from "../capabilities.js";
import { moderationPanel } from "./moderation.js";
import { editForm } from "./edit.js";
import { facesPanel } from "./people.js";
import { duplicatesPanel } from "./duplicates.js";
import { isLive, liveUpdates } from "../live.js";

const TASK_TITLES = {
  captioning: "Caption", object_detection: "Objects", face_recognition: "Faces", ocr: "Text in the image",
  nsfw: "NSFW", disturbing: "Disturbing content", meme: "Meme", saliency: "Saliency",
  cross_modal_embedding: "Visual embedding", region_features: "Region features", action_recognition: "Actions",
};
const TASK_ORDER = Object.keys(TASK_TITLES);

const num = (v) => (typeof v === "number" ? v : Number(v || 0));
const pct = (v) => `${(num(v) * 100).toFixed(2)}%`;

// Through the CSSOM: the page's Content-Security-Policy forbids style attributes.
function place(el, box) {
  const x0 = num(box.x_min), y0 = num(box.y_min), x1 = num(box.x_max), y1 = num(box.y_max);
  Object.assign(el.style, { left: pct(x0), top: pct(y0), width: pct(x1 - x0), height: pct(y1 - y0) });
}

function overlayBox(box, label, kind) {
  const el = h("div", { class: `obox ${kind}`, "data-kind": kind }, label ? h("span", {}, label) : null);
  place(el, box);
  return el;
}

function findAll(annotations, task) {
  return annotations.filter((a) => a.task === task && a.state === "done" && a.data);
}

function flagRow(name, data, key) {
  const on = Boolean(data[key]);
  const score = num(data.score);
  const threshold = data.threshold !== undefined ? num(data.threshold) : null;
  return h("div", { class: `flag ${on ? "on" : "off"}`, "data-flag": name },
    h("strong", {}, on ? `${name}: yes` : `${name}: no`),
    // Drawn red over the threshold (optimum low, high = threshold), green below.
    h("meter", { min: "0", max: "1", value: String(score), optimum: "0", low: String(threshold ?? 0.5),
      high: String(threshold ?? 0.5), "aria-label": `${name} score` }),
    h("span", { class: "muted" }, `score ${score.toFixed(2)}${threshold !== null ? ` / threshold ${threshold.toFixed(2)}` : ""}`));
}

function detailOf(annotation) {
  const d = annotation.data || {};
  switch (annotation.task) {
    case "captioning":
      return h("div", {}, h("p", { class: "caption-big" }, d.caption || "—"),
        (d.alternatives || []).length ? h("p", { class: "muted" }, `Also: ${d.alternatives.join(" · ")}`) : null);
    case "object_detection": {
      const detections = [...(d.detections || []), ...(d.frames || []).flatMap((f) => f.detections || [])];
      if (!detections.length) return h("p", { class: "muted" }, "No objects found.");
      const best = new Map();
      for (const det of detections) best.set(det.label, Math.max(best.get(det.label) || 0, num(det.score)));
      return h("ul", { class: "chips" }, [...best].sort((a, b) => b[1] - a[1]).map(([label, score]) =>
        h("li", { class: "chip object" }, `${label} ${score.toFixed(2)}`)));
    }
    case "face_recognition": {
      if (d.frames) {  // a video: the same count as its card (most faces in one keyframe)
        const most = Math.max(0, ...d.frames.map((f) => (f.faces || []).length));
        const seen = d.frames.filter((f) => (f.faces || []).length).length;
        return h("p", { "data-faces": most }, most ? `${most} face${most > 1 ? "s" : ""} (most in one keyframe; faces in ${seen} of ${d.frames.length} keyframes)` : "No faces found.");
      }
      const faces = d.faces || [];
      return h("p", { "data-faces": faces.length }, faces.length ? `${faces.length} face${faces.length > 1 ? "s" : ""}` : "No faces found.",
        faces.filter((f) => f.identity).map((f) => ` · ${f.identity}`));
    }
    case "ocr":
      return d.full_text || (d.lines || []).length
        ? h("pre", { class: "ocr" }, d.full_text || d.lines.map((l) => l.text).join("\n"))
        : h("p", { class: "muted" }, "No text found.");
    // A video's verdict carries the highest keyframe score as max_score (an image's is score).
    case "nsfw": return flagRow("NSFW", d.frames ? { ...d, score: d.max_score } : d, "is_nsfw");
    case "disturbing": return flagRow("Disturbing", d.frames ? { ...d, score: d.max_score } : d, "is_disturbing");
    case "meme": return flagRow(annotation.model.includes("hateful") ? "Hateful meme" : "Meme", d,
      "is_meme" in d ? "is_meme" : "is_hateful");
    case "saliency": return h("p", { class: "muted" }, d.frames
      ? `Saliency maps of ${d.frames.length} keyframe(s).`
      : `${(d.salient_regions || []).length} salient region(s). Tick “Saliency” under the image to see the map.`);
    case "cross_modal_embedding": return h("p", { class: "muted" }, `${d.embedding?.dimension || "?"}-d vector (${d.embedding?.model || annotation.model}) — powers “Find similar”.`);
    case "region_features": return h("p", { class: "muted" }, `${(d.regions || []).length} region vector(s) — powers region search.`);
    case "action_recognition":
      return h("ul", { class: "chips" }, (d.actions || []).slice(0, 5).map((a) => h("li", { class: "chip" }, `${a.label} ${num(a.score).toFixed(2)}`)));
    case "tagging":
      return (d.tags || []).length
        ? h("ul", { class: "chips" }, d.tags.map((t) => h("li", { class: "chip object" }, `${t.label} ${num(t.score).toFixed(2)}`)))
        : h("p", { class: "muted" }, "No tag reaches the threshold.");
    default:
      return h("pre", { class: "json" }, JSON.stringify(d, null, 1).slice(0, 800));
  }
}

function annotationList(annotations) {
  if (!annotations.length) return h("p", { class: "muted" }, "No results yet.");
  // Failed models are listed together and folded, so the results stay readable.
  const failed = annotations.filter((a) => a.state !== "done");
  const failures = failed.length ? h("details", { class: "failures" },
    h("summary", {}, `${failed.length} model${failed.length === 1 ? "" : "s"} failed`),
    h("ul", {}, failed.map((a) => h("li", { dataset: { model: a.model } }, h("strong", {}, a.model), `: ${a.error || a.state}`)))) : null;
  const sorted = annotations.filter((a) => a.state === "done").sort((a, b) => (TASK_ORDER.indexOf(a.task) + 100 * (TASK_ORDER.indexOf(a.task) < 0))
    - (TASK_ORDER.indexOf(b.task) + 100 * (TASK_ORDER.indexOf(b.task) < 0)));
  return h("div", { class: "annotations" }, sorted.map((a) => h("section", { class: "annotation", dataset: { task: a.task, model: a.model } },
    h("h3", {}, TASK_TITLES[a.task] || a.task, h("span", { class: "model" }, a.model)), detailOf(a))), failures);
}

// The video timeline: a track per kind (objects, faces, text, NSFW) with a marker per keyframe where it was
// found; a click seeks the video there. Text has a track only when a model read text in keyframes.
function timelineEvents(annotations) {
  const events = [];
  for (const a of findAll(annotations, "object_detection")) {
    for (const f of a.data.frames || []) {
      const labels = [...new Set((f.detections || []).map((d) => d.label))];
      if (labels.length) events.push({ kind: "objects", t: num(f.timestamp), text: labels.join(", ") });
    }
  }
  for (const a of findAll(annotations, "face_recognition")) {
    for (const f of a.data.frames || []) {
      const n = (f.faces || []).length;
      if (n) events.push({ kind: "faces", t: num(f.timestamp), text: `${n} face${n > 1 ? "s" : ""}` });
    }
  }
  for (const a of findAll(annotations, "ocr")) {
    for (const f of a.data.frames || []) {
      const text = f.full_text || (f.lines || []).map((l) => l.text).join(" ");
      if (text) events.push({ kind: "text", t: num(f.timestamp), text: `“${text.slice(0, 60)}”` });
    }
  }
  for (const task of ["nsfw", "disturbing"]) {
    for (const a of findAll(annotations, task)) {
      const threshold = num(a.data.threshold ?? 0.5);
      for (const f of a.data.frames || []) {
        if (num(f.score) >= threshold) events.push({ kind: task, t: num(f.timestamp), text: `${task === "nsfw" ? "NSFW" : "disturbing"} ${num(f.score).toFixed(2)}` });
      }
    }
  }
  return events.sort((x, y) => x.t - y.t);
}

const TRACK_NAMES = { objects: "Objects", faces: "Faces", text: "Text", nsfw: "NSFW", disturbing: "Disturbing" };

function timeline(annotations, video, duration) {
  const events = timelineEvents(annotations);
  if (!events.length || !duration) return null;
  const tracks = h("div", { class: "timeline-tracks" });
  for (const kind of Object.keys(TRACK_NAMES)) {
    const mine = events.filter((e) => e.kind === kind);
    if (!mine.length) continue;
    const track = h("div", { class: `timeline-track track-${kind}`, "data-track": kind });
    for (const e of mine) {
      const marker = h("button", { type: "button", class: `marker ${kind}`, dataset: { time: e.t, kind },
        title: `${e.t.toFixed(1)} s: ${e.text}`, "aria-label": `${TRACK_NAMES[kind]} at ${e.t.toFixed(1)} seconds: ${e.text}` });
      marker.style.left = `${Math.min(100, (e.t / duration) * 100).toFixed(2)}%`;
      marker.addEventListener("click", () => { video.currentTime = e.t; });
      track.append(marker);
    }
    tracks.append(h("div", { class: "timeline-row" }, h("span", { class: "track-name" }, TRACK_NAMES[kind]), track));
  }
  const rows = h("ol", { class: "timeline-list" }, events.map((e) =>
    h("li", { "data-kind": e.kind }, h("span", { class: "time" }, `${e.t.toFixed(1)} s`), " ",
      h("span", { class: `kind-${e.kind}` }, TRACK_NAMES[e.kind]), `: ${e.text}`)));
  return h("section", { class: "panel timeline", "aria-label": "Timeline" }, h("h2", {}, "Timeline"), tracks, rows);
}

function regionSelector(frame, asset, onBox) {
  // Pointer drag draws a normalised box; coordinates are relative to the displayed image.
  const rect = h("div", { class: "selection", hidden: true });
  frame.append(rect);
  let start = null;
  const point = (event) => {
    const r = frame.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (event.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (event.clientY - r.top) / r.height))];
  };
  const draw = (a, b) => {
    const box = { x_min: Math.min(a[0], b[0]), y_min: Math.min(a[1], b[1]), x_max: Math.max(a[0], b[0]), y_max: Math.max(a[1], b[1]) };
    place(rect, box);
    rect.hidden = false;
    return box;
  };
  frame.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("button")) return;
    event.preventDefault();
    frame.setPointerCapture(event.pointerId);
    start = point(event);
    draw(start, start);
  });
  frame.addEventListener("pointermove", (event) => { if (start) draw(start, point(event)); });
  frame.addEventListener("pointerup", (event) => {
    if (!start) return;
    const box = draw(start, point(event));
    start = null;
    if (box.x_max - box.x_min < 0.02 || box.y_max - box.y_min < 0.02) { rect.hidden = true; onBox(null); return; }
    onBox(box);
  });
  return (box) => { place(rect, box); rect.hidden = false; };
}

// The keyboard way to a region: four percentages.
function regionInputs(onBox) {
  const names = [["x_min", "Left", 20], ["y_min", "Top", 20], ["x_max", "Right", 80], ["y_max", "Bottom", 80]];
  const inputs = names.map(([key, label, value]) => h("label", { class: "num" }, `${label} %`,
    h("input", { type: "number", min: "0", max: "100", step: "1", value: String(value), dataset: { edge: key } })));
  const use = h("button", { type: "button" }, "Use this region");
  use.addEventListener("click", () => {
    const box = {};
    for (const label of inputs) {
      const input = label.querySelector("input");
      box[input.dataset.edge] = Math.min(100, Math.max(0, Number(input.value) || 0)) / 100;
    }
    if (box.x_max - box.x_min < 0.02 || box.y_max - box.y_min < 0.02) { toast("Right must exceed left and bottom must exceed top.", "error"); return; }
    onBox(box);
  });
  return h("details", { class: "region-keys" }, h("summary", {}, "Enter a region with the keyboard"),
    h("div", { class: "inline" }, inputs, use));
}

export async function assetView(page, { match }) {
  const id = Number(match[1]);
  let asset = await get(`/assets/${id}`);
  let annotations = await get(`/assets/${id}/annotations`);
  let summary = (await cards([id])).get(id);
  const me = await get("/users/me");
  const owner = me.id === asset.owner_id || me.role === "admin";
  const projects = owner ? await get("/projects", { mine: true }).catch(() => []) : [];

  const head = h("div", { class: "page-head asset-head" });
  const stageSlot = h("div", { class: "stage-slot" });
  const side = h("div", { class: "asset-side" });
  const below = h("div", { class: "asset-below" });
  page.append(h("p", { class: "crumbs" }, h("a", { href: "#/library" }, "← Library")), head,
    h("div", { class: "asset-layout" }, h("div", {}, stageSlot, below), side));

  const editSlot = h("div", { class: "edit-slot" });  // kept across re-renders: an open form survives polling
  const layers = { objects: true, faces: true, text: true, saliency: false };
  let regionBox = null;
  let saliencyUrl = null;

  function renderHead() {
    clear(head);
    const similar = h("a", { class: "button", href: `#/library?similar_to=${id}`, "data-action": "similar" }, "Find similar");
    const actions = h("div", { class: "actions" }, similar,
      h("button", { type: "button", "data-action": "download", onclick: async () => {
        const url = await blobUrl(`/assets/${id}/download`);
        const a = h("a", { href: url, download: asset.filename || `asset-${id}` });
        document.body.append(a); a.click(); a.remove();
      } }, "Download"));
    if (owner && (asset.kind === "image" || asset.kind === "video")) {
      actions.append(h("button", { type: "button", onclick: async () => {
        await post(`/assets/${id}/reannotate`);
        toast("Annotation queued again.");
        refresh();
      } }, "Re-annotate"));
    }
    if (owner) {
      actions.append(h("button", { type: "button", "data-action": "edit", onclick: () => {
        if (editSlot.firstChild) return;
        editSlot.append(editForm(asset, () => { editSlot.replaceChildren(); refresh().catch(() => {}); },
          () => editSlot.replaceChildren()));
        editSlot.querySelector("input")?.focus();
      } }, "Edit"));
      actions.append(h("button", { type: "button", class: "danger", onclick: async () => {
        if (!window.confirm(`Delete “${asset.title}”?`)) return;
        await del(`/assets/${id}`);
        toast("Deleted.");
        navigate("/library");
      } }, "Delete"));
    }
    if (asset.kind === "image" || asset.kind === "video") gate(similar, "similar");
    head.append(h("div", {}, h("h1", {}, asset.title || asset.filename), h("div", { class: "head-meta" },
      stateBadge(asset.annotation_state, asset.annotation_failed_models), h("span", { class: "muted" },
        `${asset.kind} · ${asset.width && asset.height ? `${asset.width}×${asset.height} · ` : ""}${asset.duration ? `${asset.duration.toFixed(1)} s · ` : ""}${formatBytes(asset.size)} · ${asset.visibility} · ${formatDate(asset.created_at)}`))),
    actions);
  }

  function renderStage() {
    clear(stageSlot);
    clear(below);
    if (asset.kind === "image") {
      const img = h("img", { class: "media", alt: asset.title || "asset" });
      blobUrl(`/assets/${id}/download`).then((url) => { img.src = url; });
      const frame = h("div", { class: "frame", "data-region": "true" }, img);
      const overlays = h("div", { class: "overlays" });
      for (const a of findAll(annotations, "object_detection")) {
        for (const d of a.data.detections || []) if (layers.objects && d.box) overlays.append(overlayBox(d.box, `${d.label} ${num(d.score).toFixed(2)}`, "object"));
      }
      for (const a of findAll(annotations, "face_recognition")) {
        for (const f of a.data.faces || []) if (layers.faces && f.box) overlays.append(overlayBox(f.box, f.identity || "face", "face"));
      }
      for (const a of findAll(annotations, "nsfw")) {
        for (const r of a.data.regions || []) if (layers.objects && r.box) overlays.append(overlayBox(r.box, `${r.label} ${num(r.score).toFixed(2)}`, "nsfw"));
      }
      for (const a of findAll(annotations, "ocr")) {
        for (const l of a.data.lines || []) if (layers.text && l.box) overlays.append(overlayBox(l.box, l.text, "text"));
      }
      if (layers.saliency) {
        const sal = h("img", { class: "saliency", alt: "" });
        if (saliencyUrl) sal.src = saliencyUrl;
        else blobUrl(`/ui/assets/${id}/saliency.png`).then((url) => { saliencyUrl = url; sal.src = url; })
          .catch((error) => toast(`Saliency: ${error.message}`, "error"));
        overlays.append(sal);
        for (const a of findAll(annotations, "saliency")) {
          for (const box of a.data.salient_regions || []) overlays.append(overlayBox(box, "", "salient"));
        }
      }
      frame.append(overlays);
      const regionButton = h("button", { type: "button", class: "primary", disabled: true, "data-action": "region-search" }, "Search this region");
      const hint = h("span", { class: "muted" }, "Drag a box on the image to find assets with similar content.");
      regionButton.addEventListener("click", () => {
        if (!regionBox) return;
        const box = [regionBox.x_min, regionBox.y_min, regionBox.x_max, regionBox.y_max].map((v) => v.toFixed(4)).join(",");
        navigate("/library", new URLSearchParams({ similar_to: id, box }));
      });
      const chosen = (box) => {
        regionBox = box;
        regionButton.disabled = !box || regionOff;
        hint.textContent = box ? `Region ${[box.x_min, box.y_min, box.x_max, box.y_max].map((v) => v.toFixed(2)).join(", ")}` : "Drag a box on the image to find assets with similar content.";
      };
      let regionOff = false;
      gate(regionButton, "region_search").then((off) => { regionOff = off; });
      const showRegion = regionSelector(frame, asset, chosen);
      const toggles = h("fieldset", { class: "layers" }, h("legend", {}, "Show"),
        Object.keys(layers).map((key) => {
          const box = h("input", { type: "checkbox", id: `layer-${key}`, checked: layers[key], dataset: { layer: key } });
          box.addEventListener("change", () => { layers[key] = box.checked; renderStage(); document.getElementById(`layer-${key}`).focus(); });
          return h("label", { for: `layer-${key}`, class: "toggle" }, box, ` ${key[0].toUpperCase()}${key.slice(1)}`);
        }));
      stageSlot.append(h("figure", { class: "stage" }, sensitiveShield(asset, summary, frame)), toggles,
        h("div", { class: "region-bar" }, hint, regionButton),
        regionInputs((box) => { showRegion(box); chosen(box); regionButton.focus(); }));
    } else if (asset.kind === "video") {
      const video = h("video", { class: "media", controls: true, preload: "metadata" });
      blobUrl(`/assets/${id}/download`).then((url) => { video.src = url; });
      stageSlot.append(h("figure", { class: "stage" }, sensitiveShield(asset, summary, video)));
      const line = timeline(annotations, video, asset.duration);
      if (line) below.append(line);
    } else {
      stageSlot.append(h("div", { class: "stage thumb-missing" }, "No preview for this kind of asset. Use Download."));
    }
  }

  function renderSide() {
    clear(side);
    side.append(h("section", { class: "panel" }, h("h2", {}, "Summary"),
      summary && summary.caption ? h("p", { class: "caption-big" }, summary.caption) : null,
      chips(summary, asset),
      asset.description ? h("p", {}, asset.description) : null,
      asset.annotation_error ? h("p", { class: "error" }, asset.annotation_error) : null));
    if (owner && projects.length) {
      const select = h("select", { id: "add-project", "aria-label": "Project" }, projects.map((p) => h("option", { value: p.id }, p.name)));
      const add = h("button", { type: "button" }, "Add");
      add.addEventListener("click", async () => {
        await post(`/projects/${select.value}/assets`, { asset_ids: [id] });
        toast("Added to the project.");
      });
      side.append(h("section", { class: "panel" }, h("h2", {}, "Add to project"), h("div", { class: "inline" }, select, add)));
    }
    const slot = h("div", { class: "moderation-slot" });
    side.append(editSlot, facesPanel(id), slot,
      h("section", { class: "panel" }, h("h2", {}, "Annotations"), annotationList(annotations)));
    if (asset.kind === "image" || asset.kind === "video") {
      moderationPanel(asset, owner, () => refresh().catch(() => {}))
        .then((panel) => slot.replaceChildren(panel)).catch(() => {});
    }
  }

  renderHead();
  renderStage();
  renderSide();
  const stopDuplicates = asset.kind === "image" || asset.kind === "video" ? duplicatesPanel(page, id) : () => {};

  let timer = null;
  let stopped = false;
  async function refresh() {
    clearTimeout(timer);
    const before = JSON.stringify([asset, annotations, summary]);
    asset = await get(`/assets/${id}`);
    annotations = await get(`/assets/${id}/annotations`);
    summary = (await cards([id])).get(id);
    if (stopped) return;
    // Re-rendered only on news, so a playing video or a drawn region survives the polling.
    if (JSON.stringify([asset, annotations, summary]) !== before) {
      renderHead();
      renderStage();
      renderSide();
    }
    schedule();
  }
  function schedule() {
    // pending and running always end in done or failed (the state says so; no guessing from silence). The
    // live-update stream says when this asset changes; polling only while it is down.
    if (PENDING.has(asset.annotation_state) && !isLive()) timer = setTimeout(() => refresh().catch(() => {}), 5000);
  }
  const unlisten = liveUpdates((kind, ids) => {
    if (kind !== "resync" && !ids.includes(asset.id)) return;
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(() => {}), 200);
  });
  schedule();
  return () => { stopped = true; clearTimeout(timer); unlisten(); stopDuplicates(); };
}
