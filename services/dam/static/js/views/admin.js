// The admin's "re-annotate missing / all" (after installing a model) with the annotation jobs' progress.

import { get, post } from "../api.js";
import { h, toast } from "../dom.js";

export function adminPanel() {
  const progress = h("p", { class: "muted", "data-progress": "", "aria-live": "polite" }, "");
  let timer = null;
  async function poll() {
    const p = await get("/admin/annotation-progress");
    progress.dataset.progress = JSON.stringify(p);
    progress.textContent = `Queued ${p.queued} · running ${p.running} · done ${p.done_last_hour} · failed ${p.failed_last_hour} (last hour)`;
    clearTimeout(timer);
    if ((p.queued || p.running) && progress.isConnected) timer = setTimeout(() => poll().catch(() => {}), 1500);
  }
  const start = (mode) => async () => {
    try {
      const result = await post(`/admin/reannotate?mode=${mode}`);
      toast(`${result.queued} asset(s) queued for annotation.`);
    } catch (error) { toast(error.message, "error"); }
    poll().catch(() => {});
  };
  poll().catch(() => {});
  return h("section", { class: "panel admin-panel" }, h("h2", {}, "Annotation (admin)"),
    h("p", { class: "hint" }, "After installing a model: annotate the assets that lack its results, or everything again."),
    h("div", { class: "actions" },
      h("button", { type: "button", "data-admin": "missing", onclick: start("missing") }, "Re-annotate missing"),
      h("button", { type: "button", "data-admin": "all", onclick: start("all") }, "Re-annotate all")),
    progress);
}
