// Live updates: one GET /api/events stream per tab (server-sent events, read with fetch so the bearer token goes
// in the header as for every other call), shared by the views that listen. Opened on the first listener, kept
// for the signed-in session, reopened with backoff when it drops (listeners are then told to reload: what was
// said meanwhile is lost). Views poll slowly only while it is down.

import { session } from "./api.js";

const listeners = new Set();
let controller = null;
let connected = false;
let retryMs = 1000;

function tell(kind, ids = []) {
  for (const listener of listeners) listener(kind, ids);
}

function frames(buffer, onFrame) {
  let end;
  while ((end = buffer.indexOf("\n\n")) >= 0) {
    const frame = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let event = "message";
    let data = "";
    for (const line of frame.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    onFrame(event, data);
  }
  return buffer;
}

async function run(reconnect) {
  const mine = new AbortController();
  controller = mine;
  try {
    const response = await fetch("/api/events", { headers: { Authorization: `Bearer ${session.token}` }, signal: mine.signal });
    if (!response.ok || !response.body) throw new Error(`live updates: ${response.status}`);
    connected = true;
    retryMs = 1000;
    if (reconnect) tell("resync");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = frames(buffer + value, (event, data) => {
        if (event === "assets") tell("assets", JSON.parse(data).assets);
        else if (event === "resync") tell("resync");
      });
    }
  } catch { /* aborted (sign-out), the network, a 429: retried below unless aborted */ }
  connected = false;
  if (mine.signal.aborted || controller !== mine) return;
  setTimeout(() => { if (controller === mine && session.token) run(true); }, retryMs);
  retryMs = Math.min(retryMs * 2, 30000);
}

// listener(kind, ids): kind "assets" (these asset ids changed) or "resync" (reload everything shown).
export function liveUpdates(listener) {
  listeners.add(listener);
  if (!controller && session.token) run(false);
  return () => listeners.delete(listener);
}

export function isLive() {
  return connected;
}

// Sign-out: the stream belongs to the session that opened it.
export function stopLiveUpdates() {
  if (controller) controller.abort();
  controller = null;
  connected = false;
}
