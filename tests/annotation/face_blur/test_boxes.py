"""Box bookkeeping between checked frames, including the 360° seam."""

from __future__ import annotations

import numpy as np

from services.annotation.face_blur import boxes as bx


def test_same_faces_match_and_changes_do_not() -> None:
    a = bx.as_boxes([[10, 10, 50, 50], [100, 10, 140, 50]])
    moved = bx.as_boxes([[110, 12, 150, 52], [20, 10, 60, 50]])
    assert sorted(bx.match(a, moved)) == [(0, 1), (1, 0)]
    assert bx.match(a, moved[:1]) is None  # a face left
    assert bx.match(a[:0], a[:0]) == []
    far = bx.as_boxes([[10, 10, 50, 50], [300, 10, 340, 50]])
    assert bx.match(a, far) is None  # too far to be the same face
    grown = bx.as_boxes([[10, 10, 150, 150], [100, 10, 140, 50]])
    assert bx.match(a, grown) is None  # size changed more than 2x


def test_interpolation_is_linear_plus_motion_margin() -> None:
    a = bx.as_boxes([[0, 0, 40, 40]])
    b = bx.as_boxes([[40, 0, 80, 40]])
    mid = bx.interpolate(a, b, [(0, 0)], 0.5)
    margin = 40 * bx.MOTION_MARGIN
    assert np.allclose(mid, [[20 - margin, 0, 60 + margin, 40]])


def test_the_seam_is_crossed_the_short_way() -> None:
    width = 400.0
    a = bx.as_boxes([[350, 0, 410, 60]])  # centre 380
    b = bx.as_boxes([[-10, 0, 50, 60]])  # centre 20: 40 px further, across the seam
    assert bx.match(a, b) is None
    assert bx.match(a, b, width) == [(0, 0)]
    mid = bx.interpolate(a, b, [(0, 0)], 0.5, width)
    centre = (mid[0, 0] + mid[0, 2]) / 2
    assert np.isclose(centre, 0) or np.isclose(centre, width)
    assert np.isclose(mid[0, 2] - mid[0, 0], 60 + 2 * 40 * bx.MOTION_MARGIN)


def test_canonical_boxes_have_their_centre_inside() -> None:
    boxes = bx.canonical(bx.as_boxes([[390, 0, 430, 10], [-30, 0, 0, 10]]), 400.0)
    assert np.allclose(boxes, [[-10, 0, 30, 10], [370, 0, 400, 10]])


def test_pixel_regions_split_at_the_seam() -> None:
    box = np.array([380.0, 10, 420, 30])
    assert bx.pixel_regions(box, 400, 100, wrap=True) == [(380, 10, 400, 30), (0, 10, 20, 30)]
    assert bx.pixel_regions(box, 400, 100, wrap=False) == [(380, 10, 400, 30)]
    assert bx.pixel_regions(np.array([-5.0, -5, 5, 5]), 400, 100, wrap=True) == [(0, 0, 5, 5), (395, 0, 400, 5)]


def test_overlap_across_the_seam() -> None:
    others = bx.as_boxes([[0, 0, 10, 10]])
    assert not bx.overlaps_any(np.array([395.0, 0, 405, 10]) - 10, others)
    assert bx.overlaps_any(np.array([395.0, 0, 405, 10]), others, 400.0)


def test_margin_grows_each_side_by_a_share_of_the_face() -> None:
    assert np.allclose(bx.with_margin(bx.as_boxes([[10, 10, 20, 30]]), 0.5), [[0, 0, 30, 40]])


def test_boxes_near_the_edge_reach_it() -> None:
    boxes = bx.as_boxes([[5, 50, 45, 95], [100, 20, 145, 65]])
    snapped = bx.snap_to_edges(boxes, 150, 100, wrap=False, margin=0.2)
    assert np.allclose(snapped, [[0, 50, 45, 100], [100, 20, 150, 65]])
    assert bx.snap_to_edges(boxes, 150, 100, wrap=True, margin=0.2)[0, 0] == 5


def test_unpaired_boxes_of_both_sides_are_held() -> None:
    a = bx.as_boxes([[0, 0, 40, 40], [200, 0, 240, 40]])
    b = bx.as_boxes([[10, 0, 50, 40]])
    assert bx.match(a, b) is None
    pairs = bx.pairs_nearby(a, b)
    assert pairs == [(0, 0)]
    assert np.allclose(bx.unpaired(a, b, pairs), [[200, 0, 240, 40]])
    # A fast face: too far for a match, near enough for a short held gap.
    fast = bx.as_boxes([[90, 0, 130, 40]])
    assert bx.pairs_nearby(a[:1], fast) == []
    assert bx.pairs_nearby(a[:1], fast, reach=2.5) == [(0, 0)]


def test_a_box_counts_as_covered_only_when_nearly_contained() -> None:
    from services.annotation.face_blur.boxes import covered

    face = np.array([100.0, 100.0, 200.0, 200.0])
    assert covered(face, np.array([[90.0, 90.0, 210.0, 210.0]]))
    # Overlapping by half (the face moved on): not covered, so it is lent to the frame.
    assert not covered(face, np.array([[150.0, 100.0, 250.0, 200.0]]))
    assert not covered(face, np.zeros((0, 4)))
    # Across the 360° seam: a box at the far right covers the face shifted by the frame's width.
    assert covered(np.array([-20.0, 0.0, 20.0, 40.0]), np.array([[970.0, 0.0, 1030.0, 40.0]]), 1000.0)


def test_overlapping_boxes_of_one_frame_merge_into_their_union() -> None:
    from services.annotation.face_blur.boxes import merge_overlapping

    merged = merge_overlapping(np.array([[0.0, 0.0, 100.0, 100.0], [20.0, 10.0, 110.0, 100.0],
                                         [300.0, 300.0, 350.0, 350.0]]))
    assert sorted(map(tuple, merged.tolist())) == [(0.0, 0.0, 110.0, 100.0), (300.0, 300.0, 350.0, 350.0)]
    # A small overlap (under half of the smaller box) keeps both.
    assert len(merge_overlapping(np.array([[0.0, 0.0, 100.0, 100.0], [90.0, 0.0, 190.0, 100.0]]))) == 2
