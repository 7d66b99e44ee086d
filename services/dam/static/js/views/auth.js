// Sign in / sign up.

import { ApiError, session } from "../api.js";
import { h, toast } from "../dom.js";
import { navigate } from "../app.js";

async function signIn(email, password) {
  const body = new URLSearchParams({ username: email, password });
  const response = await fetch("/api/auth/login", { method: "POST", body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.detail || "sign-in failed");
  session.save(data.access_token, email.trim().toLowerCase());
}

async function signUp(email, password) {
  const response = await fetch("/api/auth/register", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(data.detail)
      ? data.detail.map((d) => (d.loc || []).includes("password") ? "the password needs at least 8 characters"
        : (d.loc || []).includes("email") ? "enter a valid email address" : d.msg).join("; ")
      : data.detail;
    throw new ApiError(response.status, detail || "sign-up failed");
  }
}

export async function authView(page, { path }) {
  const signup = path === "/signup";
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", minlength: "8", required: true,
    autocomplete: signup ? "new-password" : "current-password" });
  const submit = h("button", { type: "submit", class: "primary" }, signup ? "Create account" : "Sign in");
  const form = h("form", { class: "auth-form", novalidate: false },
    h("label", { for: "email" }, "Email"), email,
    h("label", { for: "password" }, "Password"), password,
    signup ? h("p", { class: "hint" }, "At least 8 characters.") : null,
    error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      if (signup) await signUp(email.value, password.value);
      await signIn(email.value, password.value);
      if (signup) toast("Welcome! Your account is ready.");
      navigate("/library");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });
  page.classList.add("auth-page");
  page.append(h("div", { class: "auth-card" },
    h("h1", {}, signup ? "Create your account" : "Sign in to MAAM"),
    h("p", { class: "muted" }, "Media asset annotation and management."),
    h("div", { class: "tabs", role: "navigation", "aria-label": "Account" },
      h("a", { href: "#/signin", "aria-current": signup ? null : "page" }, "Sign in"),
      h("a", { href: "#/signup", "aria-current": signup ? "page" : null }, "Sign up")),
    form));
  email.focus();
}
