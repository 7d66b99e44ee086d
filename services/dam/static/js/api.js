// The REST API client: bearer token in localStorage, JSON helpers, authenticated images, XHR uploads.

const TOKEN_KEY = "maam.token";
const EMAIL_KEY = "maam.email";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  get email() { return localStorage.getItem(EMAIL_KEY) || ""; },
  save(token, email) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(EMAIL_KEY, email);
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(EMAIL_KEY);
    imageCache.clear();
  },
};

function headers(extra = {}) {
  const h = { ...extra };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  return h;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") message = body.detail;
    else if (Array.isArray(body.detail)) message = body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  } catch { /* not JSON */ }
  if (response.status === 401 && session.token) {
    session.clear();
    window.dispatchEvent(new CustomEvent("maam:signed-out"));
  }
  return new ApiError(response.status, message);
}

export async function request(method, path, { json, form, params } = {}) {
  const url = new URL(`/api${path}`, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    for (const v of [].concat(value)) if (v !== undefined && v !== null && v !== "") url.searchParams.append(key, v);
  }
  const init = { method, headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(url, init);
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path, params) => request("GET", path, { params });
export const post = (path, json, params) => request("POST", path, { json, params });
export const patch = (path, json) => request("PATCH", path, { json });
export const put = (path, json) => request("PUT", path, { json });
export const del = (path) => request("DELETE", path);
export const postForm = (path, form, params) => request("POST", path, { form, params });

// Images and media need the bearer header, which <img src> cannot send: fetch them and hand out blob URLs.
const imageCache = new Map();

export function blobUrl(path) {
  if (!imageCache.has(path)) {
    const pending = fetch(`/api${path}`, { headers: headers() }).then(async (response) => {
      if (!response.ok) throw await errorOf(response);
      return URL.createObjectURL(await response.blob());
    });
    pending.catch(() => imageCache.delete(path));
    imageCache.set(path, pending);
  }
  return imageCache.get(path);
}

export function forgetBlob(path) {
  imageCache.delete(path);
}

// XMLHttpRequest rather than fetch: only XHR reports upload progress.
export function uploadFile(file, fields, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/assets");
    if (session.token) xhr.setRequestHeader("Authorization", `Bearer ${session.token}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, (body && typeof body.detail === "string") ? body.detail : `${xhr.status} ${xhr.statusText}`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network error: the server could not be reached")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "upload cancelled")));
    const form = new FormData();
    for (const [key, value] of Object.entries(fields)) if (value) form.append(key, value);
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// Card summaries (caption, objects, flags) for many assets in one request.
export async function cards(ids) {
  if (!ids.length) return new Map();
  const list = await get("/ui/cards", { ids: ids.join(",") });
  return new Map(list.map((c) => [c.id, c]));
}
