// Moderation: what the NSFW / disturbing-content models saw (label, score, regions), the owner's or admin's
// verdict over them, and the review list of flagged assets.

import { cards, get, put } from "../api.js";
import { clear, h, toast } from "../dom.js";
import { cardGrid } from "../cards.js";

const TASK_NAMES = { nsfw: "NSFW", disturbing: "Disturbing content" };
const VERDICT_TEXT = {
  safe: "Marked safe: never blurred or flagged, whatever the models say.",
  sensitive: "Marked sensitive: blurred and flagged as NSFW, whatever the models say.",
};

function pct(v) { return v === null || v === undefined ? "—" : Number(v).toFixed(2); }

export function evidenceList(evidence) {
  if (!evidence.length) return h("p", { class: "muted" }, "No NSFW or disturbing-content model has looked at this asset.");
  return h("ul", { class: "evidence" }, evidence.map((e) => h("li", { class: `evidence-item ${e.flagged ? "on" : "off"}`,
    "data-evidence": e.task },
    h("strong", {}, `${TASK_NAMES[e.task] || e.task}: ${e.flagged ? "flagged" : "not flagged"}`),
    " ", h("span", { class: "muted" }, `score ${pct(e.score)}${e.threshold !== null && e.threshold !== undefined ? ` / threshold ${pct(e.threshold)}` : ""} · ${e.model}`),
    e.label ? h("div", { "data-evidence-label": e.label }, "Strongest: ", h("code", {}, e.label)) : null,
    e.regions.length ? h("div", { class: "muted" }, `${e.regions.length} region(s): `,
      e.regions.slice(0, 5).map((r) => `${r.label} ${pct(r.score)}`).join(", ")) : null,
    e.frames ? h("div", { class: "muted" }, `${e.frames} frame(s) over the threshold`) : null)));
}

// The panel on the asset page; `onChange` re-reads the asset after a verdict.
export async function moderationPanel(asset, canModerate, onChange) {
  const info = await get(`/assets/${asset.id}/moderation`);
  const panel = h("section", { class: "panel moderation", "data-verdict": asset.moderation || "" }, h("h2", {}, "Moderation"),
    evidenceList(info.evidence),
    asset.moderation ? h("p", { class: "verdict", "data-verdict-text": asset.moderation }, VERDICT_TEXT[asset.moderation]) : null);
  if (canModerate) panel.append(verdictButtons(asset, onChange));
  return panel;
}

export function verdictButtons(asset, onChange) {
  const set = async (verdict, message) => {
    try {
      await put(`/assets/${asset.id}/moderation`, { verdict });
      toast(message);
      onChange();
    } catch (error) { toast(error.message, "error"); }
  };
  return h("div", { class: "actions" },
    asset.moderation !== "safe" ? h("button", { type: "button", "data-verdict-set": "safe",
      onclick: () => set("safe", "Marked safe.") }, "Mark safe") : null,
    asset.moderation !== "sensitive" ? h("button", { type: "button", class: "danger", "data-verdict-set": "sensitive",
      onclick: () => set("sensitive", "Marked sensitive.") }, "Mark sensitive") : null,
    asset.moderation ? h("button", { type: "button", class: "ghost", "data-verdict-set": "models",
      onclick: () => set(null, "The models decide again.") }, "Let the models decide") : null);
}

export async function reviewView(page) {
  const body = h("div", {});
  const only = h("input", { type: "checkbox", id: "review-unreviewed" });
  page.append(h("div", { class: "page-head" }, h("h1", {}, "Review"),
    h("label", { class: "inline" }, only, " Only assets without a verdict")),
  h("p", { class: "muted" }, "Assets a model flagged as NSFW or disturbing, or marked sensitive. Mark each safe or sensitive."), body);
  async function load() {
    const items = await get("/moderation/review", { unreviewed: only.checked });
    const summaries = await cards(items.map((i) => i.asset.id));
    clear(body);
    if (!items.length) {
      body.append(h("p", { class: "empty" }, "Nothing to review."));
      return;
    }
    body.append(cardGrid(items, summaries, { extra: (asset, item) => h("div", { class: "review-extra" },
      evidenceList(item.evidence), verdictButtons(asset, () => load().catch(() => {}))) }));
  }
  only.addEventListener("change", () => load().catch((error) => toast(error.message, "error")));
  await load();
}
