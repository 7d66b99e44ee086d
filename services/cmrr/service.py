"""What the routes do: encode content, keep it per modality, retrieve and recommend across modalities."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.cmrr.config import CmrrSettings
from services.cmrr.encoders import MODALITIES, EncoderSet, ImageEncoder, resolve_encoders
from services.cmrr.index import IndexPolicy
from services.cmrr.recommender import plan_seeds, recommend
from services.cmrr.store import AddResult, Entry, IdConflictError, ModalityStore
from services.common.inference import InferenceBackend
from services.common.media import MediaError
from services.common.model_repository import ModelRepository
from services.common.settings import Settings

log = logging.getLogger(__name__)


class CmrrError(Exception):
    status = 400


class BadContentError(CmrrError):
    status = 400


class NotFoundError(CmrrError):
    status = 404


class ForbiddenError(CmrrError):
    status = 403


class ConflictError(CmrrError):
    status = 409


class UnavailableError(CmrrError):
    status = 503


@dataclass
class Ranked:
    contents: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"contents": self.contents, "scores": self.scores}


def _slug(space: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", space) or "default"


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise BadContentError(f"unknown type {modality!r}: use 'text' or 'image'")
    return modality


class CmrrService:
    def __init__(
        self, settings: Settings, cmrr: CmrrSettings, repository: ModelRepository, backend: InferenceBackend
    ) -> None:
        self.settings = settings
        self.cmrr = cmrr
        self.repository = repository
        self.backend = backend
        self.encoders = EncoderSet(cmrr.model)
        self.stores: dict[str, ModalityStore] = {}
        self.data_dir = Path(settings.data_dir) / "cmrr"
        # Serialises writes that span both stores (the id namespace is shared by the two modalities).
        self._write_lock = asyncio.Lock()

    async def start(self) -> None:
        self.encoders = resolve_encoders(
            self.repository,
            self.backend,
            self.cmrr.model,
            max_pixels=self.settings.media.max_image_pixels,
            image_model=self.cmrr.image_model,
        )
        for note in self.encoders.notes:
            log.warning("%s", note)
        policy = IndexPolicy(approximate_above=self.cmrr.approximate_above, nprobe=self.cmrr.nprobe)
        space_dir = self.data_dir / _slug(self.encoders.space or "no-encoder")
        for modality in MODALITIES:
            store = ModalityStore(modality, space_dir / f"{modality}.npz", policy, self.cmrr.snapshot_every)
            await asyncio.to_thread(store.load)
            self.stores[modality] = store
        log.info("cmrr: encoders %s; %s", self.encoders.describe(), {m: len(s) for m, s in self.stores.items()})

    async def close(self) -> None:
        for store in self.stores.values():
            await asyncio.to_thread(store.close)

    # -- encoding ------------------------------------------------------------------------------------
    async def encode(self, modality: str, body: bytes) -> tuple[np.ndarray, str]:
        """(unit vector, digest of the content)."""
        check_modality(modality)
        if not body:
            raise BadContentError(f"the request body is empty; send the {modality} content as the raw body")
        encoder = self.encoders.for_modality(modality)
        if encoder is None:
            raise UnavailableError(f"{modality} content cannot be encoded: {' '.join(self.encoders.notes)}")
        if isinstance(encoder, ImageEncoder):
            try:
                vector = await encoder.encode(body)
            except MediaError as exc:
                raise BadContentError(str(exc)) from exc
            return vector, hashlib.sha256(body).hexdigest()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadContentError(f"text content must be UTF-8: byte {exc.start} is not ({exc.reason})") from exc
        if not text.strip():
            raise BadContentError("the text is empty")
        return await encoder.encode(text), hashlib.sha256(text.encode("utf-8")).hexdigest()

    # -- routes --------------------------------------------------------------------------------------
    async def add(self, user: str, content_id: str, modality: str, body: bytes) -> AddResult:
        check_modality(modality)
        vector, digest = await self.encode(modality, body)
        async with self._write_lock:
            other = self.stores["image" if modality == "text" else "text"].entry_for_id(content_id)
            if other is not None:
                raise ConflictError(f"id {content_id!r} already names {('image' if modality == 'text' else 'text')} "
                                    "content; ids are unique across types")
            try:
                return await asyncio.to_thread(self.stores[modality].add, user, content_id, digest, vector)
            except IdConflictError as exc:
                raise ConflictError(str(exc)) from exc

    async def retrieve(self, user: str, modality: str, body: bytes, k: int) -> tuple[dict[str, Ranked], list[str]]:
        if not body:
            raise BadContentError(
                f"the request body is empty; send the {modality} query as the raw body "
                "(recommend_contents suggests content without a query)"
            )
        query, _ = await self.encode(modality, body)
        results: dict[str, Ranked] = {}
        notes: list[str] = []
        for target in MODALITIES:
            store = self.stores[target]
            if target != modality and not self.encoders.cross_modal:
                results[target] = Ranked()
                notes.append(f"{modality} to {target} retrieval needs a cross-modal encoder; {self.encoders.notes[0]}")
                continue
            hits = (await asyncio.to_thread(store.search, query[None], k, user))[0]
            results[target] = Ranked([e.latest_id for e, _ in hits], [s for _, s in hits])
            if len(hits) < k:
                notes.append(f"only {len(hits)} {target} contents of other users can be retrieved; asked for {k}")
        return results, notes

    async def recommend(
        self, user: str, k: int, novelty: float | None, seed: int | None
    ) -> tuple[dict[str, dict[str, Ranked]], list[str]]:
        novelty = self.cmrr.novelty if novelty is None else novelty
        rng = np.random.default_rng(seed)
        out: dict[str, dict[str, Ranked]] = {}
        notes: list[str] = []
        for source in MODALITIES:
            entries, vectors = await asyncio.to_thread(self.stores[source].user_vectors, user, self.cmrr.max_history)
            out[source] = {}
            if not entries:
                notes.append(f"user {user!r} has no {source} posts, so there is nothing to recommend from them")
            elif len(entries) < 3:
                notes.append(f"user {user!r} has {len(entries)} {source} post(s), too few to cluster; "
                             "each post is used as a seed")
            seeds = await asyncio.to_thread(plan_seeds, vectors, k, novelty, rng) if entries else []
            for target in MODALITIES:
                if source != target and not self.encoders.cross_modal:
                    out[source][target] = Ranked()
                    continue
                picks, found = await asyncio.to_thread(self._recommend_into, self.stores[target], seeds, user, k)
                ranked = Ranked([found[p.key].latest_id for p in picks], [p.score for p in picks])
                out[source][target] = ranked
                if seeds and len(picks) < k:
                    notes.append(f"{source} to {target}: only {len(picks)} {target} contents of other users exist; "
                                 f"asked for {k}")
        return out, notes

    @staticmethod
    def _recommend_into(store: ModalityStore, seeds: list, user: str, k: int) -> tuple[list, dict[int, Entry]]:
        found: dict[int, Entry] = {}

        def search(queries: np.ndarray, fetch: int) -> list[list[tuple[object, float]]]:
            rows = store.search(queries, fetch, user)
            for hits in rows:
                found.update((e.slot, e) for e, _ in hits)
            return [[(e.slot, score) for e, score in hits] for hits in rows]

        return recommend(seeds, search, k), found

    def list_contents(self, user: str) -> dict[str, list[dict]]:
        return {m: [_entry_json(e) for e in self.stores[m].user_entries(user)] for m in MODALITIES}

    async def delete(self, user: str, content_id: str) -> tuple[str, Entry]:
        async with self._write_lock:
            for modality, store in self.stores.items():
                entry = store.entry_for_id(content_id)
                if entry is None:
                    continue
                if entry.user != user:
                    raise ForbiddenError(f"content {content_id!r} belongs to another user")
                removed = await asyncio.to_thread(store.remove_id, content_id)
                assert removed is not None
                return modality, removed
        raise NotFoundError(f"no content with id {content_id!r}")

    def info(self) -> dict:
        return {
            "encoders": self.encoders.describe(),
            "contents": {m: len(s) for m, s in self.stores.items()},
            "index": {m: s.index_kind for m, s in self.stores.items()},
            "approximate_above": self.cmrr.approximate_above,
        }


def _entry_json(entry: Entry) -> dict:
    return {"id": entry.latest_id, "ids": list(entry.ids), "added": entry.added}
