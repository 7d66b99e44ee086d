// Upload: drag and drop (or pick) several files; each shows its own progress, then its result.

import { get, uploadFile } from "../api.js";
import { formatBytes, h, toast } from "../dom.js";
import { capabilities } from "../capabilities.js";
import { watchUpload } from "./duplicates.js";

const PARALLEL = 3;
const RETRIES = 6;

function uploadIcon() {
  // SVG needs its own namespace: parsed as an SVG document rather than built with h().
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="40" height="40" aria-hidden="true">'
    + '<path d="M12 16V4m0 0l-4 4m4-4l4 4M4 16v3a1 1 0 001 1h14a1 1 0 001-1v-3" fill="none" stroke="currentColor" '
    + 'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"/></svg>';
  return document.importNode(new DOMParser().parseFromString(svg, "image/svg+xml").documentElement, true);
}

// What an upload will actually get, from the models the annotation service has now.
function annotatesNote(caps) {
  if (!caps || !caps.reachable) {
    return h("p", { class: "hint", "data-annotates": "unknown" },
      "The annotation service is not answering now: files are stored and annotated once it is back.");
  }
  const list = (names) => (names.length ? names.join(", ") : "nothing (no model installed)");
  const missing = caps.missing.image;
  return h("div", { class: "hint", "data-annotates": "known" },
    h("p", {}, h("strong", {}, "Images get: "), h("span", { "data-annotates-media": "image" }, list(caps.annotates.image))),
    h("p", {}, h("strong", {}, "Videos get: "), h("span", { "data-annotates-media": "video" }, list(caps.annotates.video))),
    missing.length ? h("details", { class: "missing-models" }, h("summary", {}, `Not installed: ${missing.map((m) => m.name).join(", ")}`),
      h("ul", {}, missing.map((m) => h("li", {}, `${m.name}: `, h("code", {}, m.command)))),
      h("p", {}, "Then ", h("code", {}, caps.after_install), " annotates what is already stored.")) : null);
}

export async function uploadView(page) {
  const [projects, caps] = await Promise.all([get("/projects", { mine: true }).catch(() => []), capabilities()]);
  const picker = h("input", { type: "file", multiple: true, accept: "image/*,video/*,.glb,.gltf,.obj,.ply,.stl",
    id: "file-input", class: "visually-hidden" });
  const zone = h("label", { class: "dropzone", for: "file-input", tabindex: "0", role: "button",
    "aria-describedby": "drop-help" },
    uploadIcon(),
    h("strong", {}, "Drop files here"), h("span", { id: "drop-help" }, "or press Enter to choose images, videos or 3D models"));
  const visibility = h("select", { id: "visibility", name: "visibility" },
    h("option", { value: "private" }, "Private (only me)"), h("option", { value: "public" }, "Public (everyone)"));
  const tags = h("input", { id: "tags", name: "tags", placeholder: "holiday, beach" });
  const project = h("select", { id: "project", name: "project" }, h("option", { value: "" }, "No project"),
    projects.map((p) => h("option", { value: p.id }, p.name)));
  const list = h("ol", { class: "upload-list", "aria-label": "Uploads" });

  function row(file) {
    const bar = h("progress", { max: "1", value: "0", "aria-label": `Upload progress of ${file.name}` });
    const status = h("span", { class: "upload-status" }, "Waiting");
    const item = h("li", { class: "upload-item", dataset: { name: file.name } },
      h("div", { class: "upload-name" }, h("strong", {}, file.name), h("span", { class: "muted" }, formatBytes(file.size))),
      bar, status);
    list.append(item);
    return { item, bar, status };
  }

  // The same bytes uploaded twice at once: the server stores one and answers the other 409 "retry"; the
  // retry then finds the stored one (a duplicate), so the user sees both succeed.
  async function uploadRetrying(file, fields, onProgress) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await uploadFile(file, fields, onProgress);
      } catch (error) {
        if (error.status !== 409 || !/retry/i.test(error.message) || attempt >= RETRIES) throw error;
        await new Promise((resolve) => { setTimeout(resolve, 300 * 2 ** attempt); });
      }
    }
  }

  async function send(file, ui) {
    ui.status.textContent = "Uploading…";
    try {
      const asset = await uploadRetrying(file, { visibility: visibility.value, tags: tags.value, project_id: project.value },
        (fraction) => { ui.bar.value = fraction; ui.status.textContent = `${Math.round(fraction * 100)} %`; });
      ui.bar.value = 1;
      ui.item.dataset.state = "done";
      ui.status.replaceChildren(asset.duplicate ? "Already in your library: " : "Uploaded: ",
        h("a", { href: `#/asset/${asset.id}` }, asset.title || `asset #${asset.id}`));
      // Polls until NDD has checked it (it ends by itself): the toast comes even after leaving this page.
      if (!asset.duplicate) watchUpload(asset, ui.status);
    } catch (error) {
      ui.item.dataset.state = "error";
      ui.status.textContent = error.message;
      ui.status.setAttribute("role", "alert");
    }
  }

  async function start(files) {
    const queue = [...files].map((file) => [file, row(file)]);
    const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
      while (queue.length) {
        const [file, ui] = queue.shift();
        await send(file, ui);
      }
    });
    await Promise.all(workers);
    const failed = list.querySelectorAll('[data-state="error"]').length;
    toast(failed ? `${failed} upload(s) failed` : "Uploads finished: annotation runs in the background.",
      failed ? "error" : "info");
  }

  picker.addEventListener("change", () => { if (picker.files.length) start(picker.files); picker.value = ""; });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); picker.click(); }
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) start(event.dataTransfer.files);
  });

  page.append(
    h("div", { class: "page-head" }, h("h1", {}, "Upload")),
    h("div", { class: "upload-layout" },
      h("div", {}, picker, zone, list),
      h("form", { class: "panel upload-options", "aria-label": "Upload options" },
        h("h2", {}, "Options for new files"),
        h("label", { for: "visibility" }, "Visibility"), visibility,
        h("label", { for: "tags" }, "Tags (comma separated)"), tags,
        h("label", { for: "project" }, "Add to project"), project,
        annotatesNote(caps))));
}
