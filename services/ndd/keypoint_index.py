"""The keypoint vote index: binary ORB codes in a multi-table hash whose work per query does not grow
with the collection.

FAISS's `IndexBinaryMultiHash` (8 tables x 16 bits) was used before. Its buckets grow with the
collection (10 M codes at 10k images: ~150 codes per bucket on average, thousands in the buckets of
common codes), and a query of ~2,000 keypoints scanned all of them: most of a query's time at 10k.
Here the same kind of index is bounded two ways:

* the bits per table follow the collection (`hash_bits`), so the average bucket stays about
  `TARGET_BUCKET` codes;
* a bucket holding more than `stop_cap` codes is a stop-word (as in tf-idf): a code that common
  says little about which item it came from, so it is skipped instead of scanned.

A query therefore compares at most keypoints x tables x cap codes, whatever the size. The votes are
those of `vote_items` before: the nearest hashed code within `VOTE_MAX_HAMMING` bits, clearly nearer
than the second (ratio test) unless both belong to the same item.

Codes are kept in numpy arrays; the tables (sorted code numbers and bucket offsets per table) are
derived and rebuilt when needed. New codes go to a pending part with its own small tables (the
main tables are not re-sorted for every image); the pending part is folded in once it is an eighth
of the main one, so each code is re-sorted only a few times over the life of an index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CODE_BYTES = 32  # ORB: 256 bits
TABLES = 8
# Bits per table: at least MIN_BITS (what the FAISS index used), more as the collection grows so
# the average bucket stays about TARGET_BUCKET codes; 8 tables x 24 bits use 192 of the 256 bits.
MIN_BITS, MAX_BITS = 16, 24
TARGET_BUCKET = 8
# A bucket with more than STOP_FACTOR x the average (and at least MIN_STOP_CAP) codes is a stop-word.
# ORB codes are far from uniform: at 10k images (1.5 M codes, 18 bits) over a quarter of a query's
# lookups land in buckets above 8x the average, which held ~90 % of the scanned codes. On the scale
# set, caps from 23 to 94 all left the true source first in the votes of every sampled query
# (all 9 edits); 32 costs a fifth of 94.
STOP_FACTOR = 4
MIN_STOP_CAP = 32
# A query keypoint votes for the item of its nearest hashed code when this close (of 256 bits) ...
VOTE_MAX_HAMMING = 50
# ... and clearly closer than the second nearest, unless both belong to the same item.
VOTE_RATIO = 0.8
# A second-nearest code this far away (d1 < 50 <= 0.8 x 63) never fails the ratio test, so farther
# candidates are dropped before the ratio test without changing any vote.
_SECOND_MAX = math.ceil(VOTE_MAX_HAMMING / VOTE_RATIO)


def hash_bits(codes: int) -> int:
    """Bits per table for a collection of this many codes (average bucket ~TARGET_BUCKET)."""
    if codes <= 0:
        return MIN_BITS
    return int(min(MAX_BITS, max(MIN_BITS, math.ceil(math.log2(max(1.0, codes / TARGET_BUCKET))))))


def stop_cap(codes: int, bits: int) -> int:
    """Buckets with more codes than this are skipped as stop-words."""
    return max(MIN_STOP_CAP, int(STOP_FACTOR * codes / (1 << bits)))


def _keys(codes: np.ndarray, bits: int) -> np.ndarray:
    """(n, TABLES) bucket keys: table t takes the low `bits` bits of the code's 32-bit word t, so the
    tables look at disjoint bits."""
    words = np.ascontiguousarray(codes).view("<u4")[:, :TABLES]
    return words & np.uint32((1 << bits) - 1)


@dataclass
class _Tables:
    """Per table: code numbers sorted by bucket key, and where each bucket starts (offsets)."""

    order: np.ndarray  # (TABLES, n) uint32
    offsets: np.ndarray  # (TABLES, 2**bits + 1) uint32 (32 MiB at 20 bits, the size for 10 M codes)

    @staticmethod
    def build(codes: np.ndarray, bits: int) -> _Tables:
        keys = _keys(codes, bits)
        order = np.empty((TABLES, len(codes)), np.uint32)
        offsets = np.empty((TABLES, (1 << bits) + 1), np.uint32)
        for table in range(TABLES):
            column = keys[:, table]
            order[table] = np.argsort(column, kind="stable")
            counts = np.bincount(column, minlength=1 << bits)
            offsets[table, 0] = 0
            np.cumsum(counts, out=offsets[table, 1:])
        return _Tables(order, offsets)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, length) of each query key's bucket, both (q, TABLES)."""
        table = np.arange(TABLES)[None, :]
        start = self.offsets[table, keys].astype(np.int64)
        return start, self.offsets[table, keys + 1].astype(np.int64) - start


class KeypointIndex:
    """Binary codes (n, 32) uint8 with the capped multi-table hash; `ntotal`, `d` and `add` as a FAISS
    binary index has them. Not thread-safe: the engine holds its lock around every use."""

    d = CODE_BYTES * 8

    def __init__(self, codes: np.ndarray | None = None) -> None:
        self._main = np.zeros((0, CODE_BYTES), np.uint8) if codes is None else np.ascontiguousarray(codes, np.uint8)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._bits = hash_bits(len(self._main))
        self._tables: _Tables | None = None
        self._pending_tables: tuple[np.ndarray, _Tables] | None = None

    @property
    def ntotal(self) -> int:
        return len(self._main) + self._pending_n

    @property
    def bits(self) -> int:
        return self._bits

    def codes(self) -> np.ndarray:
        """Every code, in the order added (what is saved; the tables are derived from it)."""
        return np.concatenate([self._main, *self._pending]) if self._pending_n else self._main

    def add(self, codes: np.ndarray) -> None:
        if len(codes):
            self._pending.append(np.ascontiguousarray(codes, np.uint8).reshape(-1, CODE_BYTES))
            self._pending_n += len(codes)
            self._pending_tables = None

    def _fold_pending(self, force: bool = False) -> None:
        """Folds pending codes into the main part when forced or big enough (amortised re-sorting)."""
        if not self._pending_n or not (force or self._pending_n * 8 >= len(self._main)):
            return
        self._main = np.concatenate([self._main, *self._pending])
        self._pending, self._pending_n, self._pending_tables = [], 0, None
        self._bits = hash_bits(len(self._main))
        self._tables = None

    def _parts(self) -> list[tuple[np.ndarray, _Tables, int]]:
        """(codes, tables, number of the first code) of the main and the pending part."""
        self._fold_pending()
        parts = []
        if len(self._main):
            if self._tables is None:
                self._tables = _Tables.build(self._main, self._bits)
            parts.append((self._main, self._tables, 0))
        if self._pending_n:
            if self._pending_tables is None:
                pending = np.concatenate(self._pending)
                self._pending = [pending]
                self._pending_tables = (pending, _Tables.build(pending, self._bits))
            parts.append((*self._pending_tables, len(self._main)))
        return parts

    def nearest_two(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per query code: (distance, number) of the nearest and of the second-nearest code among those
        sharing a non-stop-word bucket with it; number -1 (distance 256) when there is none within
        the distances that matter for a vote."""
        q = len(queries)
        d1 = np.full(q, 256, np.int64)
        d2 = np.full(q, 256, np.int64)
        i1 = np.full(q, -1, np.int64)
        i2 = np.full(q, -1, np.int64)
        parts = self._parts()
        if not q or not parts:
            return d1, i1, d2, i2
        queries = np.ascontiguousarray(queries, np.uint8).reshape(-1, CODE_BYTES)
        keys = _keys(queries, self._bits)
        looked = [(codes, tables, first, *tables.lookup(keys)) for codes, tables, first in parts]
        # A bucket's size counts both parts: the stop-word test is about the whole collection.
        sizes = sum(length for *_, length in looked)
        common = sizes > stop_cap(self.ntotal, self._bits)
        query_words = queries.view("<u8")
        found_q, found_c, found_d = [], [], []
        for codes, tables, first, start, length in looked:
            length = np.where(common, 0, length)
            flat_len = length.ravel()
            total = int(flat_len.sum())
            if not total:
                continue
            # Every (query, code) pair of the scanned buckets, without a Python loop over buckets.
            flat_start = start.ravel()
            run_start = np.cumsum(flat_len) - flat_len
            position = np.repeat(flat_start - run_start, flat_len) + np.arange(total)
            table = np.repeat(np.tile(np.arange(TABLES), q), flat_len)
            members = tables.order[table, position].astype(np.int64)
            owner_q = np.repeat(np.repeat(np.arange(q), TABLES), flat_len)
            distance = np.bitwise_count(codes.view("<u8")[members] ^ query_words[owner_q]).sum(axis=1)
            near = distance < _SECOND_MAX
            found_q.append(owner_q[near])
            found_c.append(members[near] + first)
            found_d.append(distance[near].astype(np.int64))
        if not found_q:
            return d1, i1, d2, i2
        pair_q, pair_c, pair_d = np.concatenate(found_q), np.concatenate(found_c), np.concatenate(found_d)
        # A code found through several tables counts once: sort by (query, distance, code), drop repeats.
        order = np.lexsort((pair_c, pair_d, pair_q))
        pair_q, pair_c, pair_d = pair_q[order], pair_c[order], pair_d[order]
        fresh = np.ones(len(pair_q), bool)
        fresh[1:] = (pair_q[1:] != pair_q[:-1]) | (pair_c[1:] != pair_c[:-1])
        pair_q, pair_c, pair_d = pair_q[fresh], pair_c[fresh], pair_d[fresh]
        head = np.ones(len(pair_q), bool)
        head[1:] = pair_q[1:] != pair_q[:-1]
        firsts = np.flatnonzero(head)
        d1[pair_q[firsts]], i1[pair_q[firsts]] = pair_d[firsts], pair_c[firsts]
        seconds = firsts + 1
        seconds = seconds[(seconds < len(pair_q))]
        seconds = seconds[~head[seconds]]
        d2[pair_q[seconds]], i2[pair_q[seconds]] = pair_d[seconds], pair_c[seconds]
        return d1, i1, d2, i2


def vote_items(index: KeypointIndex, owners: np.ndarray, descriptors: np.ndarray, k_items: int
               ) -> list[tuple[int, float]]:
    """(item, votes) of the items whose keypoints match most query keypoints, most votes first."""
    if index.ntotal == 0 or len(descriptors) == 0 or k_items <= 0:
        return []
    d1, i1, d2, i2 = index.nearest_two(descriptors)
    close = (i1 >= 0) & (d1 < VOTE_MAX_HAMMING)
    first_owner = np.where(close, owners[np.maximum(i1, 0)], -1)
    second_owner = np.where(i2 >= 0, owners[np.maximum(i2, 0)], -2)
    distinct = (i2 < 0) | (d1 < VOTE_RATIO * d2) | (second_owner == first_owner)
    voters = first_owner[close & distinct]
    if not len(voters):
        return []
    items, votes = np.unique(voters, return_counts=True)
    # Most votes first; among equal votes the lower rowid (older item) first, deterministically.
    ranked = np.lexsort((items, -votes))[:k_items]
    return [(int(items[i]), float(votes[i])) for i in ranked]
