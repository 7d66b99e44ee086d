// Per-browser user settings and what the user chose to reveal this session.

const BLUR_KEY = "maam.blurSensitive";
const REVEALED_KEY = "maam.revealed";

export const prefs = {
  get blurSensitive() { return localStorage.getItem(BLUR_KEY) !== "off"; },
  set blurSensitive(on) { localStorage.setItem(BLUR_KEY, on ? "on" : "off"); },
};

function revealedSet() {
  try { return new Set(JSON.parse(sessionStorage.getItem(REVEALED_KEY) || "[]")); } catch { return new Set(); }
}

export function isRevealed(id) { return revealedSet().has(id); }

export function reveal(id) {
  const set = revealedSet();
  set.add(id);
  sessionStorage.setItem(REVEALED_KEY, JSON.stringify([...set]));
}

export function sensitiveReasons(summary) {
  const reasons = [];
  if (summary && summary.nsfw) reasons.push("NSFW");
  if (summary && summary.disturbing) reasons.push("Disturbing");
  return reasons;
}

// Blurred while flagged, the setting is on and the user has not revealed it.
export function shouldBlur(id, summary) {
  return prefs.blurSensitive && sensitiveReasons(summary).length > 0 && !isRevealed(id);
}
