"""Findable words for the search document, the same for every backend and every way in (web, `maam ingest`).

- Names (titles, tags, file names): a text search parser keeps "astronaut.jpg" or "beach_sunset-2" as one
  token, so their parts are added as words: split on punctuation, underscores, camelCase and letter/digit
  boundaries, the file extension dropped.
- Detected objects and tags: the objects facet's labels ("cat", "traffic light") are words too, so a text
  search finds what a detector saw when no caption says it (no captioner ships offline).
- OCR text: recognisers often glue words ("Region-basedsegmentation", "ofgreyvalues"); long runs of letters
  are segmented into English words (wordninja: unigram frequencies of English Wikipedia) and the parts added.
  bench/ocr_word_recall.py measures the recall this gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from services.dam.search.base import SearchDoc

_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{1,4}$")
# camelCase, ALLCapsThenWord, letters<->digits: the boundaries a word parser does not see.
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+|[^\W\d_]+")
_RUN = re.compile(r"[^\W\d_]+")
# Shorter runs are usually one word already; segmenting them adds noise ("cat" -> "c at").
GLUED_MIN = 6
_PART_MIN = 2


def name_words(names: Iterable[str]) -> str:
    """The parts of titles, tags and file names, space separated (only those that add a word)."""
    out: list[str] = []
    for name in names:
        for token in name.split():
            parts = [p.lower() for p in _PARTS.findall(_EXTENSION.sub("", token))]
            if parts != [token.lower()]:
                out += parts
    return " ".join(dict.fromkeys(out))


@lru_cache(maxsize=4096)
def _segment(run: str) -> tuple[str, ...]:
    import wordninja

    return tuple(p.lower() for p in wordninja.split(run) if len(p) >= _PART_MIN)


def glued_words(text: str) -> str:
    """Words inside glued runs of letters in `text` (OCR output), space separated; runs that are one word
    stay as they are and add nothing."""
    out: list[str] = []
    for run in _RUN.findall(text):
        if len(run) < GLUED_MIN:
            continue
        parts = _segment(run)
        if len(parts) > 1:
            out += parts
    return " ".join(dict.fromkeys(out))


def doc_words(doc: SearchDoc) -> dict[str, str]:
    """The extra words of a search document: `name_words` (weighted as titles), `object_words` (as captions)
    and `text_words` (as OCR)."""
    return {"name_words": name_words([doc.title, doc.filename, *doc.tags]), "object_words": " ".join(doc.objects),
            "text_words": glued_words(doc.ocr_text)}
