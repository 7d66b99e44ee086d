// The single-page shell: hash routes (#/library, #/asset/7, ...), sign-in guard, navigation state.

import { ApiError, get, post, session } from "./api.js";
import { clear, clearToasts, h, toast } from "./dom.js";
import { forgetCapabilities } from "./capabilities.js";
import { stopLiveUpdates } from "./live.js";
import { authView } from "./views/auth.js";
import { assetView } from "./views/asset.js";
import { detectorsView, detectorView } from "./views/detectors.js";
import { duplicatesView } from "./views/duplicates.js";
import { libraryView } from "./views/library.js";
import { peopleView, personView } from "./views/people.js";
import { projectsView, projectView } from "./views/projects.js";
import { settingsView } from "./views/settings.js";
import { uploadView } from "./views/upload.js";
import { reviewView } from "./views/moderation.js";

const routes = [
  [/^\/?$/, () => libraryView],
  [/^\/library$/, () => libraryView],
  [/^\/upload$/, () => uploadView],
  [/^\/asset\/(\d+)$/, () => assetView],
  [/^\/projects$/, () => projectsView],
  [/^\/project\/(\d+)$/, () => projectView],
  [/^\/detectors$/, () => detectorsView],
  [/^\/detector\/(\d+)$/, () => detectorView],
  [/^\/people$/, () => peopleView],
  [/^\/person\/(\d+)$/, () => personView],
  [/^\/duplicates$/, () => duplicatesView],
  [/^\/settings$/, () => settingsView],
  [/^\/review$/, () => reviewView],
  [/^\/(signin|signup)$/, () => authView],
];

let current = { cleanup: null };

export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/library";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

export function navigate(path, params) {
  const query = params && [...params].length ? `?${params}` : "";
  location.hash = `#${path}${query}`;
}

function renderAccount() {
  const box = document.getElementById("account");
  clear(box);
  const nav = document.getElementById("nav");
  nav.hidden = !session.token;
  if (!session.token) return;
  const out = h("button", { type: "button", class: "ghost" }, "Sign out");
  out.addEventListener("click", async () => {
    try { await post("/auth/logout"); } catch { /* already signed out */ }
    session.clear();
    stopLiveUpdates();
    forgetCapabilities();
    clearToasts();
    navigate("/signin");
  });
  box.append(h("span", { class: "who", title: session.email }, session.email), out);
}

async function render() {
  const { path, params } = parseHash();
  if (current.cleanup) current.cleanup();
  current = { cleanup: null };
  clearToasts(1500);
  const main = document.getElementById("main");
  const isAuth = /^\/(signin|signup)$/.test(path);
  if (!session.token && !isAuth) {
    navigate("/signin");
    return;
  }
  if (session.token && isAuth) {
    navigate("/library");
    return;
  }
  renderAccount();
  for (const a of document.querySelectorAll("#nav a")) {
    const active = path.startsWith(`/${a.dataset.nav}`) || (a.dataset.nav === "library" && path === "/");
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const route = routes.find(([re]) => re.test(path));
  clear(main);
  if (!route) {
    main.append(h("section", { class: "page" }, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/library" }, "Back to the library"))));
    return;
  }
  const match = path.match(route[0]);
  const view = route[1]();
  const page = h("section", { class: "page", "data-page": path.split("/")[1] || "library" });
  main.append(page);
  try {
    current.cleanup = (await view(page, { match, params, path })) || null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    page.append(h("p", { class: "error", role: "alert" }, error.message));
  }
}

window.addEventListener("hashchange", render);
window.addEventListener("maam:signed-out", () => {
  stopLiveUpdates();
  clearToasts();
  toast("Your session ended: please sign in again.", "error");
  navigate("/signin");
});

// Check the stored token once; an expired one goes back to sign in.
async function start() {
  if (session.token) {
    try { await get("/users/me"); } catch { /* handled by the 401 listener */ }
  }
  render();
}
start();
