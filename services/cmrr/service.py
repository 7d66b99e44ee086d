"""What the routes do: encode content in every embedding space that can, store it, retrieve and recommend
across modalities within one space. The database (store.py) is the truth; each (space, modality) has a FAISS
index (index.py) that is a cache of it, saved at shutdown and rebuilt whenever it is stale."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from services.cmrr.core.config import CmrrSettings
from services.cmrr.encoders import INSTALL_HINT, MODALITIES, Encoders, EncoderSet, ImageEncoder, resolve_encoders
from services.cmrr.index import IndexPolicy, SpaceIndex
from services.cmrr.recommender import Seed, plan_seeds, recommend
from services.cmrr.store import Change, ContentStore, Entry
from services.common.faiss_files import load_index, save_index
from services.common.http_errors import ApiError
from services.common.inference import InferenceBackend
from services.common.media import MediaError
from services.common.model_repository import ModelRepository
from services.common.settings import Settings

log = logging.getLogger(__name__)

BACKFILL_BATCH = 32


class BadContentError(ApiError):
    status = 400


class NotFoundError(ApiError):
    status = 404


class UnavailableError(ApiError):
    status = 503


@dataclass
class Ranked:
    contents: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"contents": self.contents, "scores": self.scores}


def no_contents(user: str) -> str:
    """What the original service answers for a type with no contents but the asking user's own."""
    return f"No contents available other than {user} ones"


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise BadContentError(f"unknown type {modality!r}: use 'text' or 'image'")
    return modality


def _file_name(space: str, modality: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", space)[:80] or "default"
    return f"{slug}-{hashlib.sha256(space.encode()).hexdigest()[:8]}-{modality}.faiss"


class CmrrService:
    def __init__(
        self, settings: Settings, cmrr: CmrrSettings, repository: ModelRepository, backend: InferenceBackend
    ) -> None:
        self.settings = settings
        self.cmrr = cmrr
        self.repository = repository
        self.backend = backend
        self.encoders = Encoders(cmrr.model)
        self.data_dir = Path(settings.data_dir) / "cmrr"
        self.store = ContentStore(self.data_dir / "cmrr.sqlite3")
        self.policy = IndexPolicy(approximate_above=cmrr.approximate_above, nprobe=cmrr.nprobe)
        self.indexes: dict[tuple[str, str], SpaceIndex] = {}
        self._write_lock = threading.Lock()  # a database change and its index updates, as one step
        self._changes = 0
        self._backfill: asyncio.Task | None = None

    async def start(self) -> None:
        self.encoders = resolve_encoders(self.repository, self.backend, self.cmrr.model,
                                         max_pixels=self.settings.media.max_image_pixels,
                                         image_model=self.cmrr.image_model)
        for note in self.encoders.notes:
            log.warning("%s", note)
        for space in self.encoders.spaces:
            for modality in space.modalities:
                self.indexes[(space.space, modality)] = await asyncio.to_thread(self._open_index, space.space, modality)
        self._backfill = asyncio.create_task(self._encode_missing(), name="cmrr-backfill")
        log.info("cmrr: encoders %s; contents %s", self.encoders.describe(), self.store.counts())

    def _index_path(self, space: str, modality: str) -> Path:
        return self.data_dir / "indexes" / _file_name(space, modality)

    def _open_index(self, space: str, modality: str) -> SpaceIndex:
        """The saved index when it is current, else one rebuilt from the database."""
        generation = self.store.generation(space, modality)
        load_all = functools.partial(self.store.all_vectors, space, modality)
        saved = load_index(self._index_path(space, modality))
        if saved is not None and saved.generation == generation and isinstance(saved.index, faiss.Index):
            return SpaceIndex(self.policy, load_all, saved.index, generation)
        index = SpaceIndex(self.policy, load_all)
        index.rebuild(generation)
        return index

    def save_indexes(self) -> None:
        for (space, modality), index in self.indexes.items():
            if index.index is not None and index.generation == self.store.generation(space, modality):
                save_index(self._index_path(space, modality), index.index, index.generation)

    async def close(self) -> None:
        if self._backfill is not None:
            self._backfill.cancel()
            await asyncio.gather(self._backfill, return_exceptions=True)
        await asyncio.to_thread(self.save_indexes)
        self.store.close()

    # -- writing -------------------------------------------------------------------------------------
    def _apply(self, change: Change) -> None:
        """Brings the in-memory indexes up to a committed change (called under the write lock)."""
        for key, generation in change.generations.items():
            if (index := self.indexes.get(key)) is None:
                continue  # a space not served now: its vectors wait in the database
            added = [(slot, vector) for space, modality, slot, vector in change.added if (space, modality) == key]
            index.apply([slot for space, modality, slot in change.removed if (space, modality) == key],
                        [slot for slot, _ in added], [vector for _, vector in added], generation)
        self._changes += 1
        if self._changes % self.cmrr.snapshot_every == 0:
            try:
                self.save_indexes()
            except OSError as exc:  # a cache: the database has every change
                log.error("saving the index caches failed: %s", exc)

    def _commit(self, write: Callable[[], Change]) -> Change:
        with self._write_lock:
            change = write()
            self._apply(change)
            return change

    async def add(self, user: str, content_id: str, modality: str, body: bytes) -> Change:
        check_modality(modality)
        spaces = self.encoders.encoding(modality)
        if not spaces:
            raise UnavailableError(f"{modality} content cannot be encoded: {' '.join(self.encoders.notes)}")
        digest, payload = self._content(modality, body)
        vectors = {s.space: await self._encode(s, modality, payload) for s in spaces}
        return await asyncio.to_thread(
            self._commit, lambda: self.store.add(user, content_id, modality, digest, body, vectors))

    def _content(self, modality: str, body: bytes) -> tuple[str, bytes | str]:
        """_digest of a request's body, within the text length bound."""
        digest, payload = _digest(modality, body)
        if isinstance(payload, str) and len(payload) > self.cmrr.max_text_chars:
            raise ApiError(f"the text has {len(payload):,} characters, over the {self.cmrr.max_text_chars:,}-character "
                           "limit (MAAM_CMRR__MAX_TEXT_CHARS)", 413)
        return digest, payload

    async def delete(self, user: str, content_id: str) -> Change:
        change = await asyncio.to_thread(self._commit, lambda: self.store.delete(user, content_id))
        if not change.status:
            raise NotFoundError(f"user {user!r} has no content with id {content_id!r}")
        return change

    async def _encode_missing(self) -> None:
        """Encodes the stored contents a space has no vector for yet (a model added after they were)."""
        for space in self.encoders.spaces:
            for modality in space.modalities:
                after = 0
                while batch := await asyncio.to_thread(self.store.missing_vectors, space.space, modality, after,
                                                       BACKFILL_BATCH):
                    left = await asyncio.to_thread(self.store.count_missing, space.space, modality)
                    log.info("cmrr: encoding %d stored %s contents into space %s", left, modality, space.space)
                    vectors = {}
                    for slot, body in batch:
                        try:
                            vectors[slot] = await self._encode(space, modality, _digest(modality, body)[1])
                        except ApiError as exc:  # accepted by another model, refused by this one: skipped
                            log.warning("content %d cannot be encoded into %s: %s", slot, space.space, exc)
                    after = batch[-1][0]
                    await asyncio.to_thread(self._commit, functools.partial(
                        self.store.add_vectors, space.space, modality, vectors))

    # -- encoding ------------------------------------------------------------------------------------
    async def _encode(self, space: EncoderSet, modality: str, payload: bytes | str) -> np.ndarray:
        encoder = space.for_modality(modality)
        assert encoder is not None
        if isinstance(encoder, ImageEncoder):
            assert isinstance(payload, bytes)
            try:
                return await encoder.encode(payload)
            except MediaError as exc:
                raise BadContentError(str(exc)) from exc
        assert isinstance(payload, str)
        return await encoder.encode(payload)

    def query_space(self, modality: str, space: str | None) -> EncoderSet:
        found = self.encoders.for_query(modality, space)
        if found is not None:
            return found
        if space is not None and space in {s.space for s in self.encoders.spaces}:
            raise UnavailableError(f"space {space!r} has no {modality} encoder ({INSTALL_HINT})")
        if space is not None:
            served = ", ".join(s.space for s in self.encoders.spaces) or "none"
            raise NotFoundError(f"no embedding space {space!r} is served (served: {served})")
        raise UnavailableError(f"{modality} content cannot be encoded: {' '.join(self.encoders.notes)}")

    # -- reading -------------------------------------------------------------------------------------
    async def retrieve(self, user: str, modality: str, body: bytes, k: int, space_name: str | None = None
                       ) -> tuple[dict[str, Ranked | str], list[str], str]:
        check_modality(modality)
        if not body:
            raise BadContentError(f"the request body is empty; send the {modality} query as the raw body "
                                  "(recommend_contents suggests content without a query)")
        space = self.query_space(modality, space_name)
        query = await self._encode(space, modality, self._content(modality, body)[1])
        results: dict[str, Ranked | str] = {}
        notes: list[str] = []
        for target in MODALITIES:
            if target not in space.modalities:
                results[target] = Ranked()
                notes.append(f"{modality} to {target} retrieval needs a cross-modal encoder; space {space.space!r} "
                             f"has no {target} encoder ({INSTALL_HINT})")
            elif await asyncio.to_thread(self.store.count_others, target, user) == 0:
                results[target] = no_contents(user)
            else:
                [hits] = await asyncio.to_thread(self._search, space.space, target, query[None], k, user)
                results[target] = await asyncio.to_thread(self._ranked, hits)
                if len(hits) < k:
                    notes.append(f"only {len(hits)} {target} contents of other users can be retrieved; asked for {k}")
        return results, notes, space.space

    def _search(self, space: str, modality: str, queries: np.ndarray, k: int, user: str
                ) -> list[list[tuple[int, float]]]:
        return self.indexes[(space, modality)].search(queries, k, self.store.user_slots(user, modality))

    def _ranked(self, hits: list[tuple[int, float]]) -> Ranked:
        ids = self.store.latest_ids([slot for slot, _ in hits])
        kept = [(ids[slot], score) for slot, score in hits if slot in ids]
        return Ranked([i for i, _ in kept], [s for _, s in kept])

    async def recommend(self, user: str, k: int, novelty: float | None, seed: int | None
                        ) -> tuple[dict[str, dict[str, Ranked]], list[str], dict[str, str]]:
        novelty = self.cmrr.novelty if novelty is None else novelty
        rng = np.random.default_rng(seed)
        out: dict[str, dict[str, Ranked]] = {}
        notes: list[str] = []
        spaces: dict[str, str] = {}
        for source in MODALITIES:
            out[source] = {target: Ranked() for target in MODALITIES}
            space = self.encoders.for_query(source)
            if space is None:
                notes.append(f"{source} posts cannot be encoded, so nothing is recommended from them")
                continue
            spaces[source] = space.space
            vectors = await asyncio.to_thread(self.store.user_vectors, user, source, space.space,
                                              self.cmrr.max_history)
            if not len(vectors):
                notes.append(f"user {user!r} has no {source} posts, so there is nothing to recommend from them")
                continue
            if len(vectors) < 3:
                notes.append(f"user {user!r} has {len(vectors)} {source} post(s), too few to cluster; "
                             "each post is used as a seed")
            seeds = await asyncio.to_thread(plan_seeds, vectors, k, novelty, rng)
            for target in space.modalities:
                picks, ranked = await asyncio.to_thread(self._recommend_into, space.space, target, seeds, user, k)
                out[source][target] = ranked
                if picks < k:
                    notes.append(f"{source} to {target}: only {picks} {target} contents of other users exist; "
                                 f"asked for {k}")
        return out, notes, spaces

    def _recommend_into(self, space: str, target: str, seeds: list[Seed], user: str, k: int) -> tuple[int, Ranked]:
        own = self.store.user_slots(user, target)
        index = self.indexes[(space, target)]

        def search(queries: np.ndarray, fetch: int) -> list[list[tuple[object, float]]]:
            return [list(hits) for hits in index.search(queries, fetch, own)]

        picks = recommend(seeds, search, k)
        return len(picks), self._ranked([(cast(int, p.key), p.score) for p in picks])

    def list_contents(self, user: str) -> dict[str, list[dict]]:
        return {m: [_entry_json(e) for e in self.store.user_entries(user, m)] for m in MODALITIES}

    def info(self) -> dict:
        counts = self.store.counts()
        preferred = {m: self.encoders.for_query(m) for m in MODALITIES}
        return {
            "encoders": self.encoders.describe(),
            "contents": {m: counts.get(m, 0) for m in MODALITIES},
            "index": {m: self.indexes[(s.space, m)].kind if s else "Flat" for m, s in preferred.items()},
            "spaces": [{"space": space, "modality": m, "vectors": index.ntotal, "index": index.kind,
                        "pending": self.store.count_missing(space, m)} for (space, m), index in self.indexes.items()],
            "approximate_above": self.cmrr.approximate_above,
        }


def _digest(modality: str, body: bytes) -> tuple[str, bytes | str]:
    """(sha256 of the content, what the encoder takes: image bytes or text)."""
    if not body:
        raise BadContentError(f"the request body is empty; send the {modality} content as the raw body")
    if modality == "image":
        return hashlib.sha256(body).hexdigest(), body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadContentError(f"text content must be UTF-8: byte {exc.start} is not ({exc.reason})") from exc
    if not text.strip():
        raise BadContentError("the text is empty")
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), text


def _entry_json(entry: Entry) -> dict:
    return {"id": entry.latest_id, "ids": list(entry.ids), "added": entry.added}
