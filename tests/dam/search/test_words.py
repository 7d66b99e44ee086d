"""The words added to search documents: parts of names, and words inside glued OCR runs."""

from __future__ import annotations

from services.dam.search.words import glued_words, name_words


def test_name_parts_without_the_extension() -> None:
    assert name_words(["astronaut.jpg"]) == "astronaut"
    assert name_words(["IMG_2041-beachSunset.jpeg"]) == "img 2041 beach sunset"
    assert name_words(["Cat", "holiday"]) == ""  # plain words add nothing


def test_glued_runs_are_segmented_and_plain_words_left_alone() -> None:
    words = glued_words("Region-basedsegmentation\nhistogram ofgreyvalues").split()
    assert {"segmentation", "grey", "values"} <= set(words)
    assert glued_words("a photograph of the category") == ""
