// People: every person (a face per person, count, name editing), a person's page (their assets and faces,
// merge, split, "not this person"), and the faces panel of an asset page linking each face to its person.

import { blobUrl, cards, get, patch, post } from "../api.js";
import { clear, h, toast } from "../dom.js";
import { navigate } from "../app.js";
import { cardGrid } from "../cards.js";

function facePicture(faceId, alt) {
  const img = h("img", { class: "face-pic", alt, loading: "lazy", decoding: "async" });
  if (faceId) blobUrl(`/faces/${faceId}/picture`).then((url) => { img.src = url; }).catch(() => img.replaceWith(h("div", { class: "face-pic thumb-missing" }, "?")));
  return faceId ? img : h("div", { class: "face-pic thumb-missing" }, "?");
}

function personName(p) {
  return p.name || `Unnamed person ${p.id}`;
}

function nameForm(person, onSaved) {
  const input = h("input", { value: person.name || "", maxlength: "200", placeholder: "Name", "aria-label": `Name of ${personName(person)}`, dataset: { name: person.id } });
  const form = h("form", { class: "inline name-form" }, input, h("button", { type: "submit", class: "small" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const saved = await patch(`/people/${person.id}`, input.value.trim() ? { name: input.value.trim() } : { clear_name: true });
      toast(saved.name ? `Named “${saved.name}”.` : "Name removed.");
      if (onSaved) onSaved(saved);
    } catch (error) { toast(error.message, "error"); }
  });
  return form;
}

export async function peopleView(page) {
  const body = h("div", {});
  const recluster = h("button", { type: "button", "data-action": "recluster" }, "Re-cluster faces");
  page.append(h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "People"),
    h("p", { class: "muted" }, "Faces found in your assets, grouped into persons. Name a person once to find them everywhere.")),
  h("div", { class: "actions" }, recluster)), body);
  async function load() {
    const people = await get("/people");
    clear(body);
    if (!people.length) {
      body.append(h("p", { class: "muted" }, "No persons yet: upload photos or videos with faces (a face model must be installed), then re-cluster."));
      return;
    }
    body.append(h("ul", { class: "tiles people-grid" }, people.map((p) => h("li", { class: "person-tile", dataset: { person: p.id } },
      h("a", { class: "tile", href: `#/person/${p.id}` }, facePicture(p.cover_face_id, personName(p)),
        h("strong", {}, personName(p)),
        h("span", { class: "badge" }, `${p.asset_count} asset${p.asset_count === 1 ? "" : "s"} · ${p.face_count} face${p.face_count === 1 ? "" : "s"}`)),
      nameForm(p, () => load())))));
  }
  recluster.addEventListener("click", async () => {
    recluster.disabled = true;
    try {
      const report = await post("/people/recluster");
      toast(`${report.persons} persons from ${report.faces} faces.`);
      await load();
    } catch (error) { toast(error.message, "error"); } finally { recluster.disabled = false; }
  });
  await load();
}

export async function personView(page, { match }) {
  const id = Number(match[1]);
  const me = await get("/users/me");
  const head = h("div", { class: "page-head" });
  const assetsBox = h("div", {});
  const facesBox = h("div", {});
  page.append(h("p", { class: "crumbs" }, h("a", { href: "#/people" }, "← People")), head,
    h("section", {}, h("h2", {}, "Assets"), assetsBox), h("section", {}, h("h2", {}, "Faces"), facesBox));

  async function load() {
    const person = await get(`/people/${id}`);
    const owner = me.id === person.owner_id || me.role === "admin";
    clear(head);
    const actions = h("div", { class: "actions" }, h("a", { class: "button", href: `#/library?person=${id}` }, "Search within"));
    if (owner) {
      const others = (await get("/people")).filter((p) => p.id !== id && p.space === person.space);
      if (others.length) {
        const select = h("select", { id: "merge-other", "aria-label": "Person to merge into this one" },
          others.map((p) => h("option", { value: p.id }, personName(p))));
        const merge = h("button", { type: "button", "data-action": "merge" }, "Merge into this person");
        merge.addEventListener("click", async () => {
          try {
            await post(`/people/${id}/merge`, { other: Number(select.value) });
            toast("Merged.");
            await load();
          } catch (error) { toast(error.message, "error"); }
        });
        actions.append(h("div", { class: "inline" }, select, merge));
      }
      actions.append(h("button", { type: "button", class: "ghost", onclick: async () => {
        await patch(`/people/${id}`, { hidden: !person.hidden });
        toast(person.hidden ? "Shown again." : "Hidden from People.");
        navigate("/people");
      } }, person.hidden ? "Show" : "Hide"));
    }
    head.append(h("div", { class: "person-head" }, facePicture(person.cover_face_id, personName(person)),
      h("div", {}, h("h1", { dataset: { personName: person.name || "" } }, personName(person)),
        h("p", { class: "muted" }, `${person.asset_count} asset${person.asset_count === 1 ? "" : "s"} · ${person.face_count} faces · ${person.space}`),
        owner ? nameForm(person, () => load()) : null)), actions);

    const result = await get("/search", { person: id, size: 100 });
    const assets = result.hits.map((hit) => hit.asset);
    const summaries = await cards(assets.map((a) => a.id));
    clear(assetsBox);
    assetsBox.append(h("p", { class: "total" }, `${result.total} asset${result.total === 1 ? "" : "s"}`),
      assets.length ? cardGrid(assets, summaries, {}) : h("p", { class: "muted" }, "No assets."));

    const faces = await get(`/people/${id}/faces`);
    clear(facesBox);
    facesBox.append(h("ul", { class: "tiles faces-grid" }, faces.map((f) => h("li", { class: "face-tile", dataset: { face: f.id } },
      h("a", { href: `#/asset/${f.asset_id}` }, facePicture(f.id, `Face in asset ${f.asset_id}`)),
      f.timestamp !== null ? h("span", { class: "muted" }, `${f.timestamp.toFixed(1)} s`) : null,
      owner ? h("div", { class: "inline" },
        h("button", { type: "button", class: "ghost small", "data-action": "reject", onclick: async () => {
          await post(`/faces/${f.id}/reject`);
          toast("Removed from this person.");
          await load();
        } }, "Not this person"),
        h("button", { type: "button", class: "ghost small", "data-action": "split", onclick: async () => {
          const moved = await post(`/faces/${f.id}/move`, { person_id: null });
          toast("Split into a new person.");
          navigate(`/person/${moved.person_id}`);
        } }, "Split off")) : null))));
  }
  await load();
}

// The asset page's faces: each face's picture, linked to its person's page.
export function facesPanel(assetId) {
  const panel = h("section", { class: "panel faces-panel" }, h("h2", {}, "People"));
  get(`/assets/${assetId}/faces`).then((faces) => {
    if (!faces.length) { panel.append(h("p", { class: "muted" }, "No faces found.")); return; }
    panel.append(h("ul", { class: "face-list" }, faces.map((f) => h("li", { dataset: { face: f.id } },
      facePicture(f.id, f.person_name || "face"),
      f.person_id ? h("a", { href: `#/person/${f.person_id}`, class: "face-person", dataset: { person: f.person_id } }, f.person_name || `Unnamed person ${f.person_id}`)
        : h("span", { class: "muted" }, "Not grouped yet"),
      f.timestamp !== null ? h("span", { class: "muted" }, ` at ${f.timestamp.toFixed(1)} s`) : null))));
  }).catch((error) => panel.append(h("p", { class: "error" }, error.message)));
  return panel;
}
