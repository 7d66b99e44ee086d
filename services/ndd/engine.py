"""The NDD engine: indexes and searches items of collections, over the store and FAISS indexes.

Synchronous and thread-safe: the API runs it in worker threads. The store (SQLite) is the truth;
each FAISS index is kept in memory, saved atomically after changes and rebuilt from the store
whenever its saved generation is behind.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.ndd import index_files, video
from services.ndd.descriptors import deep, offline
from services.ndd.descriptors.calibration import calibrate
from services.ndd.descriptors.keypoints import Keypoints
from services.ndd.settings import NddSettings
from services.ndd.store import Item, Store
from services.ndd.vector_index import build_index, index_kind, search_items, vector_dimension, vote_items

log = logging.getLogger(__name__)

IMAGE, VIDEO = "image", "video"
IMAGE_DESCRIPTORS = (offline.NAME, deep.NAME)
# The offline descriptor's ORB keypoints also have an index of their own (binary), for voting.
KEYPOINTS = f"{offline.NAME}-keypoints"
INDEX_NAMES = (offline.NAME, KEYPOINTS, deep.NAME)
DEFAULT_COLLECTION = "default"


class UnknownItemError(LookupError):
    pass


class MissingDescriptorError(LookupError):
    """The item was indexed without the requested descriptor."""


@dataclass
class Match:
    item: Item
    score: float
    segments: list[video.Segment] = field(default_factory=list)


@dataclass(frozen=True)
class ImageQuery:
    """A query image described by one descriptor."""

    descriptor: str
    vectors: np.ndarray
    prepared: offline.OfflineQuery | None = None


def _keypoint_arrays(prefix: str, keypoints: Keypoints) -> dict[str, np.ndarray]:
    return {
        f"{prefix}points": keypoints.points,
        f"{prefix}descriptors": keypoints.descriptors,
        f"{prefix}size": np.array([keypoints.width, keypoints.height], np.int64),
    }


def _keypoints(extra: dict[str, np.ndarray], prefix: str = "") -> Keypoints:
    width, height = (int(v) for v in extra[f"{prefix}size"])
    return Keypoints(extra[f"{prefix}points"], extra[f"{prefix}descriptors"], width, height)


def offline_image_features(rgb: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], offline.OfflineQuery]:
    """What is stored for an image (reference windows + keypoints) and its own query form, so an
    indexed item can later be searched by id without its pixels."""
    features = offline.extract(rgb)
    prepared = offline.prepare_query(rgb)
    extra = {"query": prepared.vectors}
    extra |= _keypoint_arrays("", features.keypoints) | _keypoint_arrays("m", prepared.mirrored_keypoints)
    return features.windows, extra, offline.OfflineQuery(prepared.vectors, features.keypoints,
                                                         prepared.mirrored_keypoints)


class Engine:
    def __init__(self, data_dir: Path, settings: NddSettings) -> None:
        self.root = data_dir
        self.settings = settings
        self.store = Store(data_dir / "ndd.sqlite3")
        self.store.ensure_collection(DEFAULT_COLLECTION, "Default collection")
        self._indexes: dict[tuple[str, str, str], index_files.LoadedIndex] = {}
        self._lock = threading.RLock()
        # Parsed features of recently shortlisted items; rowids are never reused, so entries never go stale.
        self._features: OrderedDict[tuple[int, str], tuple[np.ndarray, dict[str, np.ndarray]] | None] = OrderedDict()
        self._features_lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    # ---------------------------------------------------------------------------- indexes
    def _index_path(self, key: tuple[str, str, str]) -> Path:
        collection, media, descriptor = key
        return self.root / "indexes" / collection.encode().hex() / f"{media}-{descriptor}.faiss"

    def _index(self, key: tuple[str, str, str]) -> index_files.LoadedIndex:
        """The up-to-date index of key: from memory, else its file, else rebuilt from the store."""
        with self._lock:
            generation = self.store.generation(*key)
            current = self._indexes.get(key)
            if current is not None and current.generation == generation:
                return current
            loaded = index_files.load(self._index_path(key))
            if loaded is None or loaded.generation != generation:
                loaded = self._rebuild(key)
            self._indexes[key] = loaded
            return loaded

    def _rebuild(self, key: tuple[str, str, str]) -> index_files.LoadedIndex:
        vectors, owners, generation = self.store.all_vectors(*key)
        log.info("rebuilding index %s from %d stored vectors", key, len(vectors))
        if not len(vectors):
            vectors = np.zeros((0, 32), np.uint8) if key[2] == KEYPOINTS else np.zeros((0, 1), np.float32)
        index = build_index(vectors, self.settings.flat_max_vectors, self.settings.hnsw_m)
        loaded = index_files.LoadedIndex(index, owners, generation)
        index_files.save(self._index_path(key), loaded.index, loaded.owners, generation)
        return loaded

    def _append(self, key: tuple[str, str, str], before: int, vectors: np.ndarray, rowid: int) -> None:
        """Adds an item's vectors to the in-memory index when it was current; else it is rebuilt later."""
        current = self._indexes.get(key)
        if current is None or current.generation != before:
            self._indexes.pop(key, None)
            return
        dim = vector_dimension(current.index)
        if current.index.ntotal and dim != vectors.shape[1]:
            raise ValueError(f"vectors of dimension {vectors.shape[1]} do not fit index of dimension {dim}")
        if current.index.ntotal == 0 or (index_kind(current.index) == "flat"
                                         and current.index.ntotal + len(vectors) > self.settings.flat_max_vectors):
            self._indexes.pop(key, None)  # new dimension or time to switch to HNSW: rebuild
            return
        if len(vectors):
            current.index.add(np.ascontiguousarray(vectors))
        current.owners = np.concatenate([current.owners, np.full(len(vectors), rowid, np.int64)])
        current.generation = before + 1

    def persist(self, collection_id: str) -> None:
        """Saves every changed index of a collection (atomically), rebuilding stale ones."""
        with self._lock:
            for media in (IMAGE, VIDEO):
                for descriptor in INDEX_NAMES:
                    key = (collection_id, media, descriptor)
                    generation = self.store.generation(*key)
                    if generation == 0:
                        continue
                    saved = index_files.load(self._index_path(key))
                    if saved is not None and saved.generation == generation:
                        continue
                    current = self._index(key)
                    if current.generation == generation:
                        index_files.save(self._index_path(key), current.index, current.owners, generation)

    def index_stats(self, collection_id: str) -> list[dict[str, Any]]:
        out = []
        for media in (IMAGE, VIDEO):
            for descriptor in INDEX_NAMES:
                key = (collection_id, media, descriptor)
                if self.store.generation(*key) == 0:
                    continue
                current = self._index(key)
                out.append({"media_type": media, "descriptor": descriptor, "vectors": int(current.index.ntotal),
                            "kind": index_kind(current.index), "generation": current.generation})
        return out

    # ------------------------------------------------------------------------- collections
    def delete_collection(self, collection_id: str) -> None:
        with self._lock:
            self.store.delete_collection(collection_id)
            for key in [k for k in self._indexes if k[0] == collection_id]:
                del self._indexes[key]
            folder = self._index_path((collection_id, IMAGE, offline.NAME)).parent
            for path in folder.glob("*.faiss"):
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------- items
    def _add(self, collection_id: str, media: str, item_id: str, meta: dict[str, Any],
             features: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]) -> int:
        with self._lock:
            self.store.require_collection(collection_id)
            for descriptor in features:  # load (or rebuild) it now, so the new vectors are appended, not rebuilt
                self._index((collection_id, media, descriptor))
            befores = {d: self.store.generation(collection_id, media, d) for d in features}
            replaced = self.store.get_item(collection_id, media, item_id) is not None
            rowid = self.store.add_item(collection_id, media, item_id, meta, features)
            for descriptor, (vectors, _) in features.items():
                key = (collection_id, media, descriptor)
                if replaced:
                    self._indexes.pop(key, None)
                else:
                    self._append(key, befores[descriptor], vectors, rowid)
            if replaced:  # the old item may have had descriptors the new one lacks
                for descriptor in INDEX_NAMES:
                    self._indexes.pop((collection_id, media, descriptor), None)
            return rowid

    def add_image(self, collection_id: str, item_id: str, rgb: np.ndarray, deep_vector: np.ndarray | None,
                  meta: dict[str, Any]) -> int:
        windows, extra, _ = offline_image_features(rgb)
        features = {offline.NAME: (windows.astype(np.float32), extra), KEYPOINTS: (extra["descriptors"], {})}
        if deep_vector is not None:
            features[deep.NAME] = (deep_vector[None, :].astype(np.float32), {})
        meta = meta | {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
        return self._add(collection_id, IMAGE, item_id, meta, features)

    def add_video(self, collection_id: str, item_id: str, features: video.VideoFeatures, meta: dict[str, Any]) -> int:
        extra = {"times": features.times, "duration": np.float64(features.duration)}
        meta = meta | {"duration": round(features.duration, 3), "frames": len(features.times)}
        vectors = features.vectors.astype(np.float32)
        return self._add(collection_id, VIDEO, item_id, meta, {offline.NAME: (vectors, extra)})

    def delete_item(self, collection_id: str, media: str, item_id: str) -> None:
        with self._lock:
            self.store.require_collection(collection_id)
            try:
                self.store.delete_item(collection_id, media, item_id)
            except KeyError as exc:
                raise UnknownItemError(str(exc.args[0])) from exc
            for descriptor in INDEX_NAMES:
                self._indexes.pop((collection_id, media, descriptor), None)
            self.persist(collection_id)

    def require_item(self, collection_id: str, media: str, item_id: str) -> Item:
        self.store.require_collection(collection_id)
        item = self.store.get_item(collection_id, media, item_id)
        if item is None:
            raise UnknownItemError(f"{media} {item_id!r} is not in collection {collection_id!r}")
        return item

    # ------------------------------------------------------------------------------ search
    def image_query_of_item(self, collection_id: str, item_id: str, descriptor: str) -> tuple[ImageQuery, int]:
        item = self.require_item(collection_id, IMAGE, item_id)
        stored = self.store.features(item.rowid, descriptor)
        if stored is None:
            raise MissingDescriptorError(f"image {item_id!r} was indexed without the {descriptor!r} descriptor")
        vectors, extra = stored
        if descriptor == offline.NAME:
            prepared = offline.OfflineQuery(extra["query"], _keypoints(extra), _keypoints(extra, "m"))
            return ImageQuery(descriptor, prepared.vectors, prepared), item.rowid
        return ImageQuery(descriptor, vectors), item.rowid

    def search_images(self, collection_id: str, query: ImageQuery, t_sim: float, t_rank: int,
                      exclude_rowid: int | None = None) -> list[Match]:
        self.store.require_collection(collection_id)
        wanted = t_rank + (1 if exclude_rowid is not None else 0)
        k_items = max(offline.SHORTLIST, wanted) if query.descriptor == offline.NAME else wanted
        found = self._search((collection_id, IMAGE, query.descriptor), query.vectors, k_items)
        if query.descriptor == offline.NAME and query.prepared is not None:
            # Shortlist = best global windows + most keypoint votes (finds heavily overlaid copies).
            descriptors = np.concatenate([query.prepared.keypoints.descriptors,
                                          query.prepared.mirrored_keypoints.descriptors])
            with self._lock:
                current = self._index((collection_id, IMAGE, KEYPOINTS))
                voted = vote_items(current.index, current.owners, descriptors, offline.VOTE_SHORTLIST)
            scored = []
            for rowid in dict.fromkeys([r for r, _ in found] + [r for r, _ in voted]):
                stored = self._stored(rowid, offline.NAME)
                if stored is None:
                    continue
                cosine = float((query.vectors @ stored[0].T).max())
                scored.append((rowid, offline.score(query.prepared, cosine, _keypoints(stored[1]))))
        else:
            scored = [(rowid, calibrate(query.descriptor, cosine)) for rowid, cosine in found]
        return self._matches(scored, t_sim, t_rank, exclude_rowid)

    def _search(self, key: tuple[str, str, str], vectors: np.ndarray, k_items: int,
                k_vectors: int | None = None) -> list[tuple[int, float]]:
        # Under the lock: FAISS indexes must not be searched while a job appends to them.
        with self._lock:
            current = self._index(key)
            if current.index.ntotal and current.index.d != vectors.shape[1]:
                raise MissingDescriptorError(
                    f"the {key[2]!r} vectors of this query have dimension {vectors.shape[1]}, the collection's "
                    f"have {current.index.d} (a different embedding model?)")
            return search_items(current.index, current.owners, vectors, k_items, k_vectors)

    def _stored(self, rowid: int, descriptor: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        key = (rowid, descriptor)
        with self._features_lock:
            if key in self._features:
                self._features.move_to_end(key)
                return self._features[key]
        stored = self.store.features(rowid, descriptor)
        with self._features_lock:
            self._features[key] = stored
            while len(self._features) > self.settings.feature_cache_items:
                self._features.popitem(last=False)
        return stored

    def _matches(self, scored: list[tuple[int, float]], t_sim: float, t_rank: int, exclude_rowid: int | None,
                 segments: dict[int, list[video.Segment]] | None = None) -> list[Match]:
        kept = sorted(((r, s) for r, s in scored if r != exclude_rowid and s >= t_sim), key=lambda x: -x[1])[:t_rank]
        items = self.store.items_by_rowid([r for r, _ in kept])
        return [Match(items[r], round(s, 4), (segments or {}).get(r, [])) for r, s in kept if r in items]

    def video_query_of_item(self, collection_id: str, item_id: str) -> tuple[video.VideoFeatures, int]:
        item = self.require_item(collection_id, VIDEO, item_id)
        stored = self.store.features(item.rowid, offline.NAME)
        assert stored is not None
        vectors, extra = stored
        return video.VideoFeatures(vectors, extra["times"], float(extra["duration"])), item.rowid

    def search_videos(self, collection_id: str, query: video.VideoFeatures, t_sim: float, t_rank: int,
                      exclude_rowid: int | None = None) -> list[Match]:
        self.store.require_collection(collection_id)
        candidates = self._search((collection_id, VIDEO, offline.NAME), query.vectors, max(50, t_rank + 1),
                                  k_vectors=min(4096, 32 * len(query.vectors)))
        scored, segments = [], {}
        for rowid, _ in candidates:
            if rowid == exclude_rowid:
                continue
            stored = self._stored(rowid, offline.NAME)
            if stored is None:
                continue
            vectors, extra = stored
            reference = video.VideoFeatures(vectors, extra["times"], float(extra["duration"]))
            score, found = video.compare(query, reference)
            scored.append((rowid, score))
            segments[rowid] = found
        return self._matches(scored, t_sim, t_rank, exclude_rowid, segments)
