// Editing an asset's title, description, tags and visibility (PATCH /api/assets/{id}).

import { patch } from "../api.js";
import { h, toast } from "../dom.js";

export function editForm(asset, onSaved, onCancel) {
  const title = h("input", { id: "edit-title", name: "title", value: asset.title || "", maxlength: "500", required: true });
  const description = h("textarea", { id: "edit-description", name: "description", rows: "3", maxlength: "10000" }, asset.description || "");
  const tags = h("input", { id: "edit-tags", name: "tags", value: (asset.tags || []).join(", ") });
  const visibility = h("select", { id: "edit-visibility", name: "visibility" },
    h("option", { value: "private", selected: asset.visibility === "private" }, "Private (only me)"),
    h("option", { value: "public", selected: asset.visibility === "public" }, "Public (everyone)"));
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h("form", { class: "panel form-grid edit-form", "aria-label": "Edit asset" }, h("h2", {}, "Edit"),
    h("label", { for: "edit-title" }, "Title"), title,
    h("label", { for: "edit-description" }, "Description"), description,
    h("label", { for: "edit-tags" }, "Tags (comma separated)"), tags,
    h("label", { for: "edit-visibility" }, "Visibility"), visibility,
    h("div", { class: "actions" }, save, h("button", { type: "button", class: "ghost", onclick: onCancel }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const updated = await patch(`/assets/${asset.id}`, {
        title: title.value.trim(), description: description.value,
        tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean), visibility: visibility.value });
      toast("Saved.");
      onSaved(updated);
    } catch (error) {
      toast(error.message, "error");
      save.disabled = false;
    }
  });
  return form;
}
