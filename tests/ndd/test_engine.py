"""The engine's bookkeeping: the owner (item) of each indexed vector."""

from __future__ import annotations

import numpy as np

from services.ndd.engine import _append_owner


def test_owners_grow_in_place_and_equal_the_concatenation() -> None:
    rng = np.random.default_rng(3)
    arrays = {"owners": np.array([1, 1, 2], np.int64)}
    expected = [1, 1, 2]
    views, buffers = [], set()
    for rowid in range(3, 400):
        count = int(rng.integers(0, 90))
        _append_owner(arrays, rowid, count)
        expected += [rowid] * count
        views.append((arrays["owners"], list(arrays["owners"])))
        buffers.add(id(arrays["owners_buffer"]))
        assert arrays["owners"].dtype == np.int64 and list(arrays["owners"]) == expected
    # Doubling: a handful of buffers for ~18k entries, not one copy per append.
    assert len(buffers) <= 6, len(buffers)
    # Arrays handed out earlier (searches hold them under the lock) still read what they read then.
    assert all(list(view) == seen for view, seen in views)
    # An owners array replaced by another (a rebuild) is not mixed with the old buffer's contents.
    arrays["owners"] = np.array([7, 7], np.int64)
    _append_owner(arrays, 8, 2)
    assert list(arrays["owners"]) == [7, 7, 8, 8]
