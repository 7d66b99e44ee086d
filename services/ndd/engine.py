"""The NDD engine: indexes and searches items of collections, over the store and FAISS indexes.

Synchronous and thread-safe: the API runs it in worker threads. The store (SQLite) is the truth;
each FAISS index is kept in memory, saved atomically after changes and rebuilt from the store
whenever its saved generation is behind.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from services.common.faiss_files import SavedIndex, load_index, save_index
from services.ndd import video
from services.ndd.core.config import NddSettings
from services.ndd.descriptors import deep, offline
from services.ndd.descriptors.calibration import calibrate
from services.ndd.descriptors.keypoints import MIN_KEYPOINTS, Keypoints
from services.ndd.keypoint_index import KeypointIndex, vote_items
from services.ndd.store import Item, Store
from services.ndd.vector_index import add_vectors, build_index, index_kind, search_items, vector_dimension

log = logging.getLogger(__name__)

IMAGE, VIDEO = "image", "video"
IMAGE_DESCRIPTORS = (offline.NAME, deep.NAME)
# The offline descriptor's ORB keypoints also have an index of their own (binary), for voting.
KEYPOINTS = f"{offline.NAME}-keypoints"
DEFAULT_COLLECTION = "default"
IndexKey = tuple[str, str, str]  # (collection, media type, stored descriptor)


def deep_key(space: str) -> str:
    """The stored descriptor of deep vectors of one embedding space: spaces never share an index."""
    return f"{deep.NAME}:{space}"


def descriptor_name(stored: str) -> tuple[str, str]:
    """(API descriptor, embedding space) of a stored descriptor: ("deep", space) or ("offline", "offline")."""
    name, _, space = stored.partition(":")
    return name, space or name


def _file_name(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80]
    return safe if safe == text else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


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

    descriptor: str  # as stored: "offline" or "deep:<space>"
    vectors: np.ndarray
    prepared: offline.OfflineQuery | None = None

    @property
    def space(self) -> str:
        return descriptor_name(self.descriptor)[1]


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
    prepared = offline.prepare_query(rgb, features.keypoints)  # the same pixels: detected once
    extra = {"query": prepared.vectors}
    extra |= _keypoint_arrays("", features.keypoints) | _keypoint_arrays("m", prepared.mirrored_keypoints)
    return features.windows, extra, offline.OfflineQuery(prepared.vectors, features.keypoints,
                                                         prepared.mirrored_keypoints)


def _append_owner(arrays: dict[str, np.ndarray], rowid: int, count: int) -> None:
    """`arrays["owners"]` + `count` times `rowid`, in amortised constant time: owners is a view at the front of
    `arrays["owners_buffer"]`, which doubles when full. A copy of the whole array per indexed image (8 M
    entries at 100k images) was a third of indexing time at 36k images. Only "owners" is saved to disk."""
    owners = arrays["owners"]
    size = len(owners)
    buffer = arrays.get("owners_buffer")
    if buffer is None or owners.base is not buffer or len(buffer) < size + count:
        buffer = np.empty(max(2 * (size + count), 1024), np.int64)
        buffer[:size] = owners
        arrays["owners_buffer"] = buffer
    buffer[size : size + count] = rowid
    arrays["owners"] = buffer[: size + count]  # views handed out before stay valid: only the tail is written


class Engine:
    def __init__(self, data_dir: Path, settings: NddSettings) -> None:
        self.root = data_dir
        self.settings = settings
        self.store = Store(data_dir / "ndd.sqlite3")
        self.store.ensure_collection(DEFAULT_COLLECTION, "Default collection")
        self._indexes: dict[IndexKey, SavedIndex] = {}  # arrays["owners"]: the item rowid of each vector
        # Generation of each index file as this engine last wrote or read it: persist() need not read
        # a file (hundreds of MB at 10k images) back only to learn that it is current.
        self._saved: dict[IndexKey, int] = {}
        self._lock = threading.RLock()
        # Parsed features of recently shortlisted items; rowids are never reused, so entries never go stale.
        self._features: OrderedDict[tuple[int, str], Any] = OrderedDict()  # (rowid, descriptor or "keypoints")
        self._features_lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    # ---------------------------------------------------------------------------- indexes
    def _folder(self, collection_id: str) -> Path:
        # Hashed: a collection id of any accepted length makes a valid file name.
        return self.root / "indexes" / hashlib.sha256(collection_id.encode()).hexdigest()[:32]

    def _index_path(self, key: IndexKey) -> Path:
        collection, media, descriptor = key
        return self._folder(collection) / f"{media}-{_file_name(descriptor)}.faiss"

    def _index(self, key: IndexKey) -> SavedIndex:
        """The up-to-date index of key: from memory, else its file, else rebuilt from the store."""
        with self._lock:
            generation = self.store.generation(*key)
            current = self._indexes.get(key)
            if current is not None and current.generation == generation:
                return current
            loaded = self._load(key)
            if loaded is None or loaded.generation != generation or "owners" not in loaded.arrays:
                loaded = self._rebuild(key)
            self._indexes[key] = loaded
            return loaded

    def _rebuild(self, key: IndexKey) -> SavedIndex:
        vectors, owners, generation = self.store.all_vectors(*key)
        log.info("rebuilding index %s from %d stored vectors", key, len(vectors))
        if not len(vectors):
            vectors = np.zeros((0, 32), np.uint8) if key[2] == KEYPOINTS else np.zeros((0, 1), np.float32)
        index = build_index(vectors, self.settings.flat_max_vectors, self.settings.hnsw_m,
                            self.settings.hnsw_ef_construction)
        rebuilt = SavedIndex(index, generation, {"owners": owners})
        if generation:  # an index nothing was ever added to is not worth a file
            self._save(key, rebuilt)
        return rebuilt

    def _save(self, key: IndexKey, saved: SavedIndex) -> None:
        if isinstance(saved.index, KeypointIndex):
            # The codes are the index; its hash tables are derived from them after loading.
            save_index(self._index_path(key), faiss.IndexBinaryFlat(saved.index.d), saved.generation,
                       owners=saved.arrays["owners"], codes=saved.index.codes())
        else:
            save_index(self._index_path(key), saved.index, saved.generation, owners=saved.arrays["owners"])
        self._saved[key] = saved.generation

    def _load(self, key: IndexKey) -> SavedIndex | None:
        loaded = load_index(self._index_path(key))
        if loaded is None:
            return None
        if key[2] == KEYPOINTS:
            codes = loaded.arrays.pop("codes", None)
            if codes is None:  # a file of the FAISS multi-hash index used before: rebuilt from the store
                return None
            loaded.index = KeypointIndex(codes)
        self._saved[key] = loaded.generation
        return loaded

    def _append(self, key: IndexKey, before: int, vectors: np.ndarray, rowid: int) -> None:
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
            add_vectors(current.index, vectors)
        _append_owner(current.arrays, rowid, len(vectors))
        current.generation = before + 1

    def _forget(self, collection_id: str, media: str | None = None) -> None:
        for key in [k for k in self._indexes if k[0] == collection_id and media in (None, k[1])]:
            del self._indexes[key]
            self._saved.pop(key, None)

    def persist(self, collection_id: str) -> None:
        """Saves every changed index of a collection (atomically), rebuilding stale ones."""
        with self._lock:
            for media, descriptor in self.store.index_keys(collection_id):
                key = (collection_id, media, descriptor)
                generation = self.store.generation(*key)
                if self._saved.get(key) == generation and self._index_path(key).exists():
                    continue
                current = self._index(key)
                if current.generation == generation and self._saved.get(key) != generation:
                    self._save(key, current)

    def index_stats(self, collection_id: str) -> list[dict[str, Any]]:
        out = []
        for media, descriptor in self.store.index_keys(collection_id):
            current = self._index((collection_id, media, descriptor))
            name, space = descriptor_name(descriptor)
            out.append({"media_type": media, "descriptor": name, "space": space, "vectors": int(current.index.ntotal),
                        "dimension": vector_dimension(current.index), "kind": index_kind(current.index),
                        "generation": current.generation})
        return out

    # ------------------------------------------------------------------------- collections
    def delete_collection(self, collection_id: str) -> None:
        with self._lock:
            self.store.delete_collection(collection_id)
            self._forget(collection_id)
            for path in self._folder(collection_id).glob("*.faiss"):
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
            if replaced:  # the old item may have had descriptors the new one lacks: rebuild them all
                self._forget(collection_id, media)
                return rowid
            for descriptor, (vectors, _) in features.items():
                self._append((collection_id, media, descriptor), befores[descriptor], vectors, rowid)
            return rowid

    def add_image(self, collection_id: str, item_id: str, rgb: np.ndarray, deep_vector: deep.Embedding | None,
                  meta: dict[str, Any]) -> int:
        windows, extra, _ = offline_image_features(rgb)
        features = {offline.NAME: (windows.astype(np.float32), extra), KEYPOINTS: (extra["descriptors"], {})}
        if deep_vector is not None:
            features[deep_key(deep_vector.space)] = (deep_vector.vector[None, :].astype(np.float32), {})
        meta = meta | {"width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
        return self._add(collection_id, IMAGE, item_id, meta, features)

    def add_video(self, collection_id: str, item_id: str, features: video.VideoFeatures, meta: dict[str, Any]) -> int:
        extra = {"times": features.times, "duration": np.float64(features.duration)}
        meta = meta | {"duration": round(features.duration, 3), "frames": features.frames}
        vectors = features.vectors.astype(np.float32)
        return self._add(collection_id, VIDEO, item_id, meta, {offline.NAME: (vectors, extra)})

    def delete_item(self, collection_id: str, media: str, item_id: str) -> None:
        with self._lock:
            self.store.require_collection(collection_id)
            try:
                self.store.delete_item(collection_id, media, item_id)
            except KeyError as exc:
                raise UnknownItemError(str(exc.args[0])) from exc
            self._forget(collection_id, media)
            self.persist(collection_id)

    def require_item(self, collection_id: str, media: str, item_id: str) -> Item:
        self.store.require_collection(collection_id)
        item = self.store.get_item(collection_id, media, item_id)
        if item is None:
            raise UnknownItemError(f"{media} {item_id!r} is not in collection {collection_id!r}")
        return item

    # ------------------------------------------------------------------------------ search
    def image_query_of_item(self, collection_id: str, item_id: str, descriptor: str) -> tuple[ImageQuery, int]:
        """The item as a query; `deep` searches the embedding space the item's deep vector is in."""
        item = self.require_item(collection_id, IMAGE, item_id)
        stored_name = next((d for d in item.descriptors if descriptor_name(d)[0] == descriptor), descriptor)
        stored = self.store.features(item.rowid, stored_name)
        if stored is None:
            raise MissingDescriptorError(f"image {item_id!r} was indexed without the {descriptor!r} descriptor")
        vectors, extra = stored
        if descriptor == offline.NAME:
            prepared = offline.OfflineQuery(extra["query"], _keypoints(extra), _keypoints(extra, "m"))
            return ImageQuery(descriptor, prepared.vectors, prepared), item.rowid
        return ImageQuery(stored_name, vectors), item.rowid

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
                voted = vote_items(current.index, current.arrays["owners"], descriptors, offline.VOTE_SHORTLIST)
            scored = []
            # Best global and most-voted alternately, so both kinds of evidence reach verification.
            interleaved = [r for pair in zip_longest(found, voted) for r, _ in filter(None, pair)]
            flat_query = len(query.prepared.keypoints) < MIN_KEYPOINTS
            with self._lock:
                current = self._index((collection_id, IMAGE, offline.NAME))
            for rank, rowid in enumerate(dict.fromkeys(interleaved)):
                windows = self._windows(current, rowid)
                if windows is None:
                    continue
                cosine = float((query.vectors @ windows.T).max())
                if rank >= offline.VERIFIED and not flat_query:
                    # Any reference gets the same unverified score then: its keypoints are not read.
                    scored.append((rowid, offline.unverified_score(cosine)))
                    continue
                reference = self._reference_keypoints(rowid)
                if reference is None:
                    continue
                scored.append((rowid, offline.score(query.prepared, cosine, reference,
                                                    check=rank < offline.VERIFIED)))
        else:
            scored = [(rowid, calibrate(descriptor_name(query.descriptor)[0], cosine)) for rowid, cosine in found]
        return self._matches(scored, t_sim, t_rank, exclude_rowid)

    def _search(self, key: IndexKey, vectors: np.ndarray, k_items: int,
                k_vectors: int | None = None) -> list[tuple[int, float]]:
        # Under the lock: FAISS indexes must not be searched while a job appends to them.
        with self._lock:
            current = self._index(key)
            if current.index.ntotal and current.index.d != vectors.shape[1]:
                raise MissingDescriptorError(
                    f"the {key[2]!r} vectors of this query have dimension {vectors.shape[1]}, the collection's "
                    f"have {current.index.d} (a different embedding model?)")
            return search_items(current.index, current.arrays["owners"], vectors, k_items, k_vectors,
                                self.settings.hnsw_ef_search)

    def _windows(self, current: SavedIndex, rowid: int) -> np.ndarray | None:
        """An image's offline window vectors, copied out of its loaded index (a memory copy, where reading
        them from the store costs a query and an npz parse), else from the store."""
        with self._lock:  # the index may be appended to (a FAISS array reallocated) meanwhile
            owners = current.arrays["owners"]
            # Owners ascend: vectors are appended for ever higher rowids, rebuilds read them by rowid.
            start, end = (int(i) for i in np.searchsorted(owners, [rowid, rowid + 1]))
            if end > start and owners[start] == rowid and owners[end - 1] == rowid:
                return current.index.reconstruct_n(start, end - start)
        stored = self._stored(rowid, offline.NAME)
        return None if stored is None else stored[0]

    def _reference_keypoints(self, rowid: int) -> Keypoints | None:
        """The keypoints of an indexed image (only the three arrays verification needs are parsed)."""
        key = (rowid, "keypoints")
        with self._features_lock:
            if key in self._features:
                self._features.move_to_end(key)
                return self._features[key]
        extra = self.store.extra(rowid, offline.NAME, ("points", "descriptors", "size"))
        keypoints = None if extra is None else _keypoints(extra)
        with self._features_lock:
            self._features[key] = keypoints
            while len(self._features) > self.settings.feature_cache_items:
                self._features.popitem(last=False)
        return keypoints

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
