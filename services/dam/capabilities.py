"""What the DAM can do with the models installed now, asked from the annotation service (ListCapabilities)
and cached briefly, so a model installed while the DAM runs shows up within `TTL_S`.

A *feature* is something the UI offers (find similar, region search, text-to-image search, detectors, and
the annotations an upload gets); it needs one row of the annotation service's task table. A feature whose
row has no model is shown disabled with the one command that enables it, and its errors name that command.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from services.dam.annotation.client import AnnotationClient, AnnotationServiceError

TTL_S = 15.0
REANNOTATE = "maam dam reannotate --missing"

# Feature -> (media, task row) it needs, and what the UI calls it.
FEATURES: dict[str, tuple[str, str, str]] = {
    "similar": ("image", "cross_modal_embedding", "Find similar"),
    "region_search": ("image", "region_features", "Region search"),
    "semantic": ("text", "cross_modal_embedding", "Search by meaning (text to image)"),
    "detectors": ("image", "cross_modal_embedding", "User-made detectors"),
    "suggest": ("image", "cross_modal_embedding", "Suggest similar assets"),
}
# Task rows an upload is annotated with, as the UI names them.
ANNOTATION_NAMES = {
    "object_detection": "objects",
    "captioning": "captions",
    "face_recognition": "faces",
    "ocr": "text (OCR)",
    "nsfw": "NSFW",
    "disturbing": "disturbing content",
    "meme": "memes",
    "action_recognition": "actions",
    "cross_modal_embedding": "visual similarity",
    "region_features": "region features",
    "saliency": "saliency",
}


@dataclass
class Row:
    task: str
    media: str
    models: list[str]
    available: bool
    enable_command: str
    builtin: bool = False


@dataclass
class Capabilities:
    reachable: bool
    rows: list[Row] = field(default_factory=list)
    error: str = ""

    def row(self, media: str, task: str) -> Row | None:
        return next((r for r in self.rows if r.media == media and r.task == task), None)

    def feature(self, name: str) -> dict:
        media, task, label = FEATURES[name]
        row = self.row(media, task)
        if not self.reachable:
            return {"label": label, "available": None, "command": "", "reason": self.error}
        if row is None or not row.available:
            command = row.enable_command if row is not None else ""
            return {"label": label, "available": False, "command": command,
                    "reason": f"no model for {task.replace('_', ' ')} ({media}) is installed"}
        return {"label": label, "available": True, "command": "", "reason": ""}

    def annotates(self, media: str, configured: list[str]) -> list[str]:
        """What an upload of this media gets, by name (`configured`: MAAM_DAM__ANNOTATION_MODELS, empty: all)."""
        names = []
        for row in self.rows:
            if row.media != media or not row.available or row.task not in ANNOTATION_NAMES:
                continue
            if configured and not set(row.models) & set(configured):
                continue
            name = ANNOTATION_NAMES[row.task]
            if name not in names:
                names.append(name)
        return names

    def missing(self, media: str) -> list[dict]:
        """Annotations this media could get with one more install: name and command."""
        out, seen = [], set()
        for row in self.rows:
            name = ANNOTATION_NAMES.get(row.task)
            if row.media == media and not row.available and name and name not in seen and row.enable_command:
                seen.add(name)
                out.append({"name": name, "command": row.enable_command})
        return out

    def command_for(self, feature: str) -> str:
        return self.feature(feature)["command"]


class CapabilityCache:
    def __init__(self, client: AnnotationClient, ttl_s: float = TTL_S) -> None:
        self._client, self._ttl = client, ttl_s
        self._value: Capabilities | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Capabilities:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at > self._ttl or not self._value.reachable:
                self._value = await self._ask()
                self._at = time.monotonic()
            return self._value

    async def _ask(self) -> Capabilities:
        try:
            reply = await self._client.capabilities()
        except AnnotationServiceError as exc:
            return Capabilities(False, error=f"the annotation service did not answer ({exc})")
        return Capabilities(True, [Row(t.task, t.media, list(t.models), t.available, t.enable_command, t.builtin)
                                   for t in reply.tasks])
