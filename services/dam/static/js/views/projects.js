// Projects: list and create; a project's assets, "expand with similar", remove.

import { cards, del, get, post } from "../api.js";
import { clear, h, toast } from "../dom.js";
import { navigate } from "../app.js";
import { cardGrid } from "../cards.js";
import { gate } from "../capabilities.js";

export async function projectsView(page) {
  const list = await get("/projects");
  const name = h("input", { id: "project-name", required: true, maxlength: "200", placeholder: "Summer campaign" });
  const description = h("input", { id: "project-description", maxlength: "10000", placeholder: "What belongs here" });
  const visibility = h("select", { id: "project-visibility" }, h("option", { value: "private" }, "Private"), h("option", { value: "public" }, "Public"));
  const form = h("form", { class: "panel form-grid", "aria-label": "New project" }, h("h2", {}, "New project"),
    h("label", { for: "project-name" }, "Name"), name,
    h("label", { for: "project-description" }, "Description"), description,
    h("label", { for: "project-visibility" }, "Visibility"), visibility,
    h("button", { type: "submit", class: "primary" }, "Create project"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const project = await post("/projects", { name: name.value, description: description.value, visibility: visibility.value });
      navigate(`/project/${project.id}`);
    } catch (error) { toast(error.message, "error"); }
  });
  const items = list.length
    ? h("ul", { class: "tiles" }, list.map((p) => h("li", {}, h("a", { class: "tile", href: `#/project/${p.id}` },
      h("strong", {}, p.name), h("span", { class: "muted" }, p.description || "No description"),
      h("span", { class: "badge" }, `${p.asset_count} asset${p.asset_count === 1 ? "" : "s"} · ${p.visibility}`)))))
    : h("p", { class: "muted" }, "No projects yet: create one, then add assets from their pages or while uploading.");
  page.append(h("div", { class: "page-head" }, h("h1", {}, "Projects")), h("div", { class: "two-col" }, h("div", {}, items), form));
}

export async function projectView(page, { match }) {
  const id = Number(match[1]);
  const project = await get(`/projects/${id}`);
  const me = await get("/users/me");
  const owner = me.id === project.owner_id || me.role === "admin";
  const body = h("div", {});
  const expand = h("button", { type: "button" }, "Suggest similar assets");
  const searchLink = h("a", { class: "button", href: `#/library?project=${id}` }, "Search within");
  page.append(h("p", { class: "crumbs" }, h("a", { href: "#/projects" }, "← Projects")),
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, project.name), h("p", { class: "muted" }, project.description)),
      h("div", { class: "actions" }, searchLink, expand, owner ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!window.confirm(`Delete project “${project.name}”? Its assets stay in the library.`)) return;
        await del(`/projects/${id}`);
        navigate("/projects");
      } }, "Delete project") : null)), body);
  gate(expand, "suggest");

  async function load() {
    const result = await get(`/projects/${id}/assets`, { size: 100 });
    const summaries = await cards(result.items.map((a) => a.id));
    clear(body);
    body.append(h("p", { class: "total" }, `${result.total} asset${result.total === 1 ? "" : "s"}`));
    body.append(result.items.length ? cardGrid(result.items, summaries, { extra: owner ? (asset) => {
      const remove = h("button", { type: "button", class: "ghost small", "aria-label": `Remove ${asset.title} from the project` }, "Remove");
      remove.addEventListener("click", async () => { await del(`/projects/${id}/assets/${asset.id}`); load(); });
      return remove;
    } : null }) : h("p", { class: "muted" }, "This project is empty."));
  }
  expand.addEventListener("click", async () => {
    try {
      const { space, assets: found } = await post(`/projects/${id}/expand`, undefined, { k: 12 });
      const summaries = await cards(found.map((a) => a.id));
      const grid = cardGrid(found, summaries, { extra: owner ? (asset) => {
        const add = h("button", { type: "button", class: "small" }, "Add");
        add.addEventListener("click", async () => { await post(`/projects/${id}/assets`, { asset_ids: [asset.id] }); add.disabled = true; load(); });
        return add;
      } : null });
      body.prepend(h("section", { class: "panel suggestions", "data-space": space }, h("h2", {}, "Similar assets"),
        h("p", { class: "muted" }, `Compared in ${space}.`),
        found.length ? grid : h("p", { class: "muted" }, "Nothing similar found.")));
    } catch (error) { toast(error.message, "error"); }
  });
  await load();
}
