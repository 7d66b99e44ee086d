// Settings: sensitive-content blur, account, personal API keys.

import { del, get, post, session } from "../api.js";
import { clear, formatDate, h, openDialog, toast } from "../dom.js";
import { prefs } from "../prefs.js";
import { adminPanel } from "./admin.js";

export async function settingsView(page) {
  const me = await get("/users/me");
  const blur = h("input", { type: "checkbox", id: "blur-sensitive", checked: prefs.blurSensitive });
  blur.addEventListener("change", () => {
    prefs.blurSensitive = blur.checked;
    toast(blur.checked ? "NSFW and disturbing media will be blurred." : "Sensitive media will be shown without blur.");
  });
  const keys = h("div", {});
  async function loadKeys() {
    const list = await get("/users/me/api-keys");
    clear(keys);
    keys.append(list.length ? h("ul", { class: "keys" }, list.map((k) => {
      const revoke = h("button", { type: "button", class: "ghost small danger" }, "Revoke");
      revoke.addEventListener("click", async () => { await del(`/users/me/api-keys/${k.id}`); loadKeys(); });
      return h("li", {}, h("code", {}, `${k.prefix}…`), ` ${k.name} · created ${formatDate(k.created_at)} `, revoke);
    })) : h("p", { class: "muted" }, "No API keys."));
  }
  const keyName = h("input", { id: "key-name", placeholder: "ingest script", required: true, maxlength: "100" });
  const keyForm = h("form", { class: "inline" }, h("label", { for: "key-name" }, "New key"), keyName, h("button", { type: "submit" }, "Create"));
  keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const created = await post("/users/me/api-keys", { name: keyName.value });
    keyName.value = "";
    openDialog("Your new API key", h("div", {}, h("p", {}, "Copy it now: it is shown only once."), h("pre", { class: "secret" }, created.key)));
    loadKeys();
  });
  page.append(h("div", { class: "page-head" }, h("h1", {}, "Settings")),
    h("section", { class: "panel" }, h("h2", {}, "Sensitive content"),
      h("label", { class: "toggle big", for: "blur-sensitive" }, blur, " Blur NSFW and disturbing media until I reveal it"),
      h("p", { class: "hint" }, "Stored in this browser.")),
    h("section", { class: "panel" }, h("h2", {}, "Account"), h("p", {}, `${me.email} · ${me.role} · since ${formatDate(me.created_at)}`),
      h("p", { class: "muted" }, `Signed in as ${session.email}`)),
    h("section", { class: "panel" }, h("h2", {}, "API keys"), h("p", { class: "hint" }, "For scripts: send it as the X-API-Key header or `maam ingest`."), keys, keyForm));
  if (me.role === "admin") page.append(adminPanel());
  await loadKeys();
}
