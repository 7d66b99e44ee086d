"""The tokenizers text encoders use, checked against ids worked out by hand (CLIP's ids for single characters
are the real CLIP vocabulary's: "a" = 320, "!" = 256)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from services.common.text_tokenizers import (
    ByteTokenizer,
    ClipBpeTokenizer,
    TokenizerError,
    WordPieceTokenizer,
    tokenizer_from_params,
)


@pytest.fixture
def merges(tmp_path: Path) -> Path:
    path = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("#version: 0.2\nc a\nca t</w>\nt h\nth e</w>\n")
    return path


def test_clip_bpe_merges_lowercases_and_wraps(merges: Path) -> None:
    tok = ClipBpeTokenizer(merges, context_length=8)
    sot, eot = 516, 517  # 512 byte tokens + 4 merges, then <start_of_text>, <end_of_text>
    assert tok.sot == sot and tok.eot == eot
    ids = tok(["The  CAT", "a!"])
    assert ids.dtype == np.int64 and ids.shape == (2, 8)
    assert ids[0].tolist() == [sot, 515, 513, eot, 0, 0, 0, 0]  # "the</w>", "cat</w>"
    assert ids[1].tolist() == [sot, 320, 256, eot, 0, 0, 0, 0]
    # "that" + "'s" (CLIP splits clitics): "th" "a" "t</w>" then "'" "s</w>"; byte b has id b - 33 when printable.
    assert tok.encode("that's") == [514, ord("a") - 33, 256 + ord("t") - 33, ord("'") - 33, 256 + ord("s") - 33]


def test_clip_bpe_truncates_keeping_the_end_token(merges: Path) -> None:
    tok = ClipBpeTokenizer(merges, context_length=4)
    row = tok(["cat cat cat cat cat"])[0].tolist()
    assert row == [tok.sot, 513, 513, tok.eot]


def test_clip_bpe_refuses_a_file_that_is_not_merges(tmp_path: Path) -> None:
    bad = tmp_path / "vocab.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(TokenizerError, match="cannot read"):
        ClipBpeTokenizer(bad)


def test_wordpiece(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "un", "##believ", "##able"]
    vocab.write_text("\n".join(tokens))
    tok = WordPieceTokenizer(vocab, context_length=12)
    assert tok(["Hello worlds unbelievable!"])[0].tolist() == [2, 4, 5, 6, 7, 8, 9, 1, 3, 0, 0, 0]


def test_byte_tokenizer_and_sidecar_dispatch(tmp_path: Path, merges: Path) -> None:
    assert ByteTokenizer(100, 4)(["AB"])[0].tolist() == [65, 66, 0, 0]
    assert ByteTokenizer(100, 2)(["é"])[0].tolist() == [0xC3 % 100, 0xA9 % 100]
    assert isinstance(tokenizer_from_params(tmp_path, {"vocab_size": 10, "seq_len": 3}, "test"), ByteTokenizer)
    spec = {"tokenizer": {"kind": "clip-bpe", "vocab_file": merges.name, "context_length": 77}}
    assert tokenizer_from_params(merges.parent, spec).context_length == 77
    with pytest.raises(TokenizerError, match=r"params\.tokenizer is missing"):
        tokenizer_from_params(tmp_path, {}, "pulled")
    with pytest.raises(TokenizerError, match="unknown tokenizer kind"):
        tokenizer_from_params(tmp_path, json.loads('{"tokenizer": {"kind": "sentencepiece"}}'))


def test_wordpiece_sidecar_keys_of_the_minilm_export(tmp_path: Path) -> None:
    # services/models/export/minilm.py writes `max_length` and `lowercase`; both must be honoured.
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "Hello"]))
    spec = {"kind": "wordpiece", "vocab_file": "vocab.txt", "lowercase": False, "max_length": 5}
    cased = tokenizer_from_params(tmp_path, {"tokenizer": spec})
    assert isinstance(cased, WordPieceTokenizer) and cased.context_length == 5 and not cased.lower_case
    assert cased(["Hello"])[0].tolist() == [2, 5, 3, 0, 0]
    uncased = tokenizer_from_params(tmp_path, {"tokenizer": {**spec, "lowercase": True}})
    assert uncased(["Hello"])[0].tolist() == [2, 4, 3, 0, 0]
