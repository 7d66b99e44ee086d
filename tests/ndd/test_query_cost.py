"""What the query-cost work changed in the engine: window vectors read from the loaded index, the
keypoint codes saved as the vote index's file (tables rebuilt on load), a file of the FAISS multi-hash
index of before rebuilt from the store."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from services.common.faiss_files import load_index, save_index
from services.ndd.core.config import NddSettings
from services.ndd.descriptors import offline
from services.ndd.engine import IMAGE, KEYPOINTS, Engine, ImageQuery
from services.ndd.keypoint_index import KeypointIndex


def _engine(path: Path, photos: dict[str, np.ndarray], flat_max: int = 200_000) -> Engine:
    engine = Engine(path, NddSettings(flat_max_vectors=flat_max))
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        engine.add_image("default", name, photos[name], None, {})
    return engine


@pytest.mark.parametrize("flat_max", [200_000, 150])  # exact index, and HNSW
def test_windows_come_out_of_the_index_as_stored(tmp_path, photos, flat_max):
    engine = _engine(tmp_path / "ndd", photos, flat_max)
    current = engine._index(("default", IMAGE, offline.NAME))
    for name in ("chelsea", "rocket"):
        rowid = engine.require_item("default", IMAGE, name).rowid
        stored = engine.store.features(rowid, offline.NAME)
        assert stored is not None
        assert np.array_equal(engine._windows(current, rowid), stored[0])
    engine.close()


def _ranked(engine: Engine, rgb: np.ndarray) -> list[tuple[str, float]]:
    prepared = offline.prepare_query(rgb)
    matches = engine.search_images("default", ImageQuery(offline.NAME, prepared.vectors, prepared), 0.0, 10)
    return [(m.item.item_id, m.score) for m in matches]


def test_saved_codes_reload_into_the_same_vote_index(tmp_path, photos):
    engine = _engine(tmp_path / "ndd", photos)
    query = np.ascontiguousarray(photos["coffee"][40:, ::-1])
    before = _ranked(engine, query)
    engine.persist("default")
    engine.close()
    [path] = list((tmp_path / "ndd" / "indexes").rglob("image-offline-keypoints.faiss"))
    saved = load_index(path)
    assert saved is not None and saved.arrays["codes"].shape[1] == 32
    restarted = Engine(tmp_path / "ndd", NddSettings())
    assert _ranked(restarted, query) == before and before[0][0] == "coffee"
    assert isinstance(restarted._index(("default", IMAGE, KEYPOINTS)).index, KeypointIndex)
    restarted.close()


def test_a_multihash_file_of_before_is_rebuilt(tmp_path, photos):
    engine = _engine(tmp_path / "ndd", photos)
    engine.persist("default")
    key = ("default", IMAGE, KEYPOINTS)
    current = engine._index(key)
    codes = current.index.codes()
    engine.close()
    old = faiss.IndexBinaryMultiHash(256, 8, 16)  # what the file held before the vote index
    old.add(codes)
    [path] = list((tmp_path / "ndd" / "indexes").rglob("image-offline-keypoints.faiss"))
    save_index(path, old, current.generation, owners=current.arrays["owners"])
    restarted = Engine(tmp_path / "ndd", NddSettings())
    rebuilt = restarted._index(key)
    assert isinstance(rebuilt.index, KeypointIndex) and np.array_equal(rebuilt.index.codes(), codes)
    assert _ranked(restarted, photos["chelsea"])[0][0] == "chelsea"
    restarted.close()
