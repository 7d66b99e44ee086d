"""Pure parts of the near-duplicate code: pair rows and their segment orientation, grouping."""

from __future__ import annotations

import json

from services.dam.duplicates.client import Hit
from services.dam.duplicates.queries import _oriented, group_pairs
from services.dam.duplicates.sync import pair_of


def test_pair_rows_put_the_lower_id_first_and_orient_segments() -> None:
    segment = {"query_start": 1.0, "query_end": 3.0, "reference_start": 10.0, "reference_end": 12.0}
    low = pair_of(5, Hit("9", 0.8, [segment]))
    assert (low["a"], low["b"]) == (5, 9)
    assert json.loads(low["segments"]) == [{"a_start": 1.0, "a_end": 3.0, "b_start": 10.0, "b_end": 12.0}]
    high = pair_of(9, Hit("5", 0.8, [segment]))
    assert (high["a"], high["b"]) == (5, 9)
    assert json.loads(high["segments"]) == [{"a_start": 10.0, "a_end": 12.0, "b_start": 1.0, "b_end": 3.0}]
    assert pair_of(5, Hit("5", 1.0)) is None
    assert pair_of(5, Hit("not-an-asset", 1.0)) is None
    stored = json.loads(low["segments"])[0]
    assert _oriented(stored, a_is_this=False) == {"start": 10.0, "end": 12.0, "other_start": 1.0, "other_end": 3.0}


def test_groups_are_connected_components() -> None:
    pairs = [(1, 2, 0.9), (2, 3, 0.7), (7, 8, 0.6), (4, 5, 0.8), (5, 1, 0.6)]
    assert sorted(group_pairs(pairs)) == [[1, 2, 3, 4, 5], [7, 8]]
    assert group_pairs([]) == []
