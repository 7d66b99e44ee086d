// Multi-select in the library: a checkbox on each card, and a bar of actions for the selection
// (tag, add to project, re-annotate, delete) through POST /api/assets/bulk.

import { get, post } from "../api.js";
import { h, toast } from "../dom.js";

export function bulkSelection(onDone) {
  const selected = new Set();
  const count = h("strong", { class: "bulk-count" }, "");
  const tags = h("input", { id: "bulk-tags", placeholder: "tag, another", "aria-label": "Tags to add" });
  const project = h("select", { id: "bulk-project", "aria-label": "Project" }, h("option", { value: "" }, "Project…"));
  get("/projects", { mine: true }).then((list) => project.append(...list.map((p) => h("option", { value: p.id }, p.name))))
    .catch(() => {});
  const bar = h("div", { class: "bulk-bar", role: "region", "aria-label": "Selected assets", hidden: true }, count);

  async function run(action, extra, message) {
    if (!selected.size) return;
    try {
      const result = await post("/assets/bulk", { ids: [...selected], action, ...extra });
      const skipped = Object.keys(result.skipped).length;
      toast(`${message}: ${result.done.length}${skipped ? `, ${skipped} skipped (${Object.values(result.skipped)[0]})` : ""}.`,
        skipped ? "error" : "info");
      selected.clear();
      update();
      onDone();
    } catch (error) { toast(error.message, "error"); }
  }
  const button = (label, action, handler, cls = "") => h("button", { type: "button", class: cls, "data-bulk": action, onclick: handler }, label);
  bar.append(
    h("span", { class: "inline" }, tags, button("Add tags", "tag", () => {
      const list = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
      if (!list.length) { toast("Type the tags to add first.", "error"); return; }
      run("tag", { tags: list }, "Tagged").then(() => { tags.value = ""; });
    })),
    h("span", { class: "inline" }, project, button("Add to project", "add_to_project", () => {
      if (!project.value) { toast("Choose a project first.", "error"); return; }
      run("add_to_project", { project_id: Number(project.value) }, "Added to the project");
    })),
    button("Re-annotate", "reannotate", () => run("reannotate", {}, "Annotation queued")),
    button("Delete", "delete", () => {
      if (window.confirm(`Delete ${selected.size} asset(s)?`)) run("delete", {}, "Deleted");
    }, "danger"),
    button("Clear selection", "clear", () => { selected.clear(); update(); }, "ghost"));

  function update() {
    bar.hidden = selected.size === 0;
    count.textContent = `${selected.size} selected`;
    for (const box of document.querySelectorAll(".card .select-box")) box.checked = selected.has(Number(box.dataset.select));
  }
  // Adds a checkbox to every card of the grid that has none (cards are rebuilt when their state changes).
  function decorate(grid) {
    for (const card of grid.querySelectorAll(".card")) {
      if (card.querySelector(".select-box")) continue;
      const id = Number(card.dataset.id);
      const box = h("input", { type: "checkbox", class: "select-box", "data-select": id,
        "aria-label": `Select ${card.querySelector(".card-title")?.textContent || `asset ${id}`}`, checked: selected.has(id) });
      box.addEventListener("change", () => { if (box.checked) selected.add(id); else selected.delete(id); update(); });
      card.prepend(box);
    }
  }
  return { bar, decorate };
}
