"""The keypoint vote index: bucket sizes chosen by collection size, stop-word buckets skipped, the
nearest codes of what it does scan found exactly, and votes still naming the right photo."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from services.ndd import keypoint_index as ki
from services.ndd.descriptors.keypoints import detect, mirrored
from services.ndd.descriptors.offline import extract, unverified_score
from services.ndd.descriptors.offline import score as offline_score
from services.ndd.engine import offline_image_features


def test_bits_grow_with_the_collection_so_buckets_stay_small():
    assert ki.hash_bits(0) == ki.MIN_BITS
    assert ki.hash_bits(1_000) == ki.MIN_BITS
    sizes = [10**5, 10**6, 10**7, 10**8]
    bits = [ki.hash_bits(n) for n in sizes]
    assert bits == sorted(bits) and bits[-1] > bits[0]
    for n, b in zip(sizes, bits, strict=True):
        assert n / (1 << b) <= ki.TARGET_BUCKET  # the average bucket does not grow with n ...
        # ... and neither does the most a lookup may scan.
        assert ki.stop_cap(n, b) == max(ki.MIN_STOP_CAP, int(ki.STOP_FACTOR * n / (1 << b)))
        assert ki.stop_cap(n, b) <= max(ki.MIN_STOP_CAP, ki.STOP_FACTOR * ki.TARGET_BUCKET)
    assert ki.hash_bits(10**12) == ki.MAX_BITS


def _flip_bits(codes: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(codes, axis=1)
    for row in bits:
        row[rng.choice(bits.shape[1], count, replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def test_nearest_codes_match_brute_force_over_the_scanned_buckets():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (6_000, ki.CODE_BYTES), dtype=np.uint8)
    index = ki.KeypointIndex(codes[:5_000])
    index.add(codes[5_000:])  # a pending part, searched beside the main one
    queries = _flip_bits(codes[rng.choice(len(codes), 200, replace=False)], 6, rng)
    d1, i1, d2, _ = index.nearest_two(queries)
    distance = np.unpackbits(queries[:, None, :] ^ codes[None, :, :], axis=2).sum(axis=2)
    keys, query_keys = ki._keys(codes, index.bits), ki._keys(queries, index.bits)
    for row in range(len(queries)):
        shares = (keys == query_keys[row]).any(axis=1)  # no bucket is a stop-word at this size
        candidates = np.flatnonzero(shares & (distance[row] < ki._SECOND_MAX))
        ranked = candidates[np.argsort(distance[row, candidates], kind="stable")]
        assert len(ranked) >= 1  # 6 flipped bits leave most tables' keys intact
        assert d1[row] == distance[row, ranked[0]] and distance[row, i1[row]] == d1[row]
        assert d2[row] == (distance[row, ranked[1]] if len(ranked) > 1 else 256)


def test_buckets_over_the_cap_are_stop_words():
    rng = np.random.default_rng(1)
    common = np.tile(rng.integers(0, 256, (1, ki.CODE_BYTES), dtype=np.uint8), (ki.MIN_STOP_CAP + 1, 1))
    # The top byte of each 32-bit word is read by no table (at most 24 bits each): the codes differ
    # there, yet share every bucket.
    common[:, 3::4] = rng.integers(0, 256, (len(common), ki.TABLES), dtype=np.uint8)
    rare = rng.integers(0, 256, (50, ki.CODE_BYTES), dtype=np.uint8)
    index = ki.KeypointIndex(np.concatenate([common, rare]))
    d1, i1, _, _ = index.nearest_two(np.concatenate([common[:1], rare[:1]]))
    assert i1[0] == -1  # every table's bucket of the common code is over the cap: nothing scanned
    assert (i1[1], d1[1]) == (len(common), 0)
    owners = np.concatenate([np.zeros(len(common), np.int64), 1 + np.arange(len(rare))])
    assert ki.vote_items(index, owners, common[:3], 5) == []
    assert ki.vote_items(index, owners, rare[:3], 5) == [(1, 1.0), (2, 1.0), (3, 1.0)]


def test_pending_codes_are_found_and_saved_in_order():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (3_000, ki.CODE_BYTES), dtype=np.uint8)
    index = ki.KeypointIndex(codes[:1_000])
    index.add(codes[1_000:1_050])  # small: stays pending
    assert index.nearest_two(codes[1_010:1_011])[1][0] == 1_010
    index.add(codes[1_050:])  # now bigger than an eighth of the main part: folded in
    assert index.nearest_two(codes[2_999:3_000])[1][0] == 2_999
    assert index.ntotal == 3_000 and np.array_equal(index.codes(), codes)


def _jpeg(image: Image.Image, quality: int = 60) -> np.ndarray:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.mark.parametrize("cap", [None, 2])
def test_votes_name_the_source_photo_even_with_a_tiny_stop_word_cap(photos, monkeypatch, cap):
    if cap is not None:  # almost every bucket of this small set becomes a stop-word at cap 2
        monkeypatch.setattr(ki, "MIN_STOP_CAP", cap)
        monkeypatch.setattr(ki, "STOP_FACTOR", 0)
    names = list(photos)
    found = [detect(photos[name]).descriptors for name in names]
    index = ki.KeypointIndex(np.concatenate(found))
    owners = np.concatenate([np.full(len(d), number, np.int64) for number, d in enumerate(found)])
    for number, name in enumerate(names):
        image = Image.fromarray(photos[name])
        edits = [ImageEnhance.Brightness(image).enhance(1.3), image.resize((image.width // 2, image.height // 2)),
                 image.crop((image.width // 8, 0, image.width, image.height * 7 // 8)),
                 image.transpose(Image.FLIP_LEFT_RIGHT)]
        for edited in edits:
            query = _jpeg(edited)
            descriptors = np.concatenate([detect(query).descriptors, detect(mirrored(query)).descriptors])
            votes = ki.vote_items(index, owners, descriptors, 3)
            assert votes and votes[0][0] == number, (name, votes)


def test_indexed_images_detect_keypoints_once_and_keep_the_same_features(photos):
    rgb = photos["coffee"]
    windows, extra, prepared = offline_image_features(rgb)
    reference = extract(rgb)
    assert np.array_equal(windows, reference.windows)
    assert np.array_equal(extra["descriptors"], reference.keypoints.descriptors)
    assert np.array_equal(extra["mdescriptors"], detect(mirrored(rgb)).descriptors)
    assert prepared.keypoints is not None and len(prepared.keypoints) == len(reference.keypoints)


def test_unverified_score_is_what_score_gives_without_checking(photos):
    query_features = offline_image_features(photos["chelsea"])[2]
    for other in ("coffee", "rocket"):
        reference = extract(photos[other]).keypoints
        for cosine in (0.3, 0.8, 0.95):
            assert unverified_score(cosine) == offline_score(query_features, cosine, reference, check=False)
