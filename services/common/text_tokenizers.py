"""Text tokenizers for exported text encoders, without torch or open_clip at serve time.

A text encoder's `maam.json` names its tokenizer in `params.tokenizer`:
- `{"kind": "clip-bpe", "vocab_file": "bpe_simple_vocab_16e6.txt.gz", "context_length": 77}`: OpenAI CLIP's
  byte-level BPE, as open_clip's `SimpleTokenizer` implements it (same merges file, same ids);
- `{"kind": "wordpiece", "vocab_file": "vocab.txt" | "tokenizer.json", "max_length" | "context_length": 128,
  "lowercase": true}`: BERT's WordPiece (sentence-transformers MiniLM: uncased);
- `{"kind": "test", "vocab_size": V, "seq_len": L}`: byte values mod V, for the tiny test models only.
Test models written by `tests/support/test_models.py` carry `vocab_size`/`seq_len` in `params` and no
`tokenizer` entry; they get the test tokenizer.
"""

from __future__ import annotations

import gzip
import html
import itertools
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class TokenizerError(ValueError):
    """The sidecar's tokenizer description cannot be used."""


class Tokenizer(Protocol):
    context_length: int

    def __call__(self, texts: list[str]) -> np.ndarray:
        """int64 token ids [len(texts), context_length]."""


class ByteTokenizer:
    """Byte values mod vocab_size, padded with 0 / truncated to seq_len. Only for the tiny test models."""

    def __init__(self, vocab_size: int, seq_len: int) -> None:
        if vocab_size <= 0 or seq_len <= 0:
            raise TokenizerError(f"test tokenizer needs positive vocab_size and seq_len, got {vocab_size}, {seq_len}")
        self.vocab_size = vocab_size
        self.context_length = seq_len

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), np.int64)
        for row, text in enumerate(texts):
            ids = [b % self.vocab_size for b in text.encode("utf-8")[: self.context_length]]
            out[row, : len(ids)] = ids
        return out


@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(word))


# CLIP's pattern uses \p{L} and \p{N} from the `regex` module; with `re`, letters are word characters that are
# neither digits nor "_", and a run of "other" characters includes "_" as CLIP's does.
_CLIP_PATTERN = re.compile(
    r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""",
    re.IGNORECASE,
)

# The merges file has more lines than CLIP's vocabulary uses; open_clip keeps this many.
_CLIP_MERGES = 49152 - 256 - 2


class ClipBpeTokenizer:
    """OpenAI CLIP's tokenizer: lower-cased byte-level BPE, <start_of_text> ... <end_of_text>, zero padded."""

    def __init__(self, vocab_file: Path, context_length: int = 77) -> None:
        try:
            with gzip.open(vocab_file) as handle:
                lines = handle.read().decode("utf-8").split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TokenizerError(f"{vocab_file}: cannot read the CLIP BPE merges file: {exc}") from exc
        merges = [tuple(line.split()) for line in lines[1 : _CLIP_MERGES + 1] if line.strip()]
        if not merges or any(len(m) != 2 for m in merges):
            raise TokenizerError(f"{vocab_file}: not a CLIP BPE merges file (expected 'a b' pairs after a header)")
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
        vocab += ["<start_of_text>", "<end_of_text>"]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.bpe_ranks = {merge: i for i, merge in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self.sot = self.encoder["<start_of_text>"]
        self.eot = self.encoder["<end_of_text>"]
        self.context_length = context_length
        self._cache: dict[str, list[str]] = {}

    def _bpe(self, token: str) -> list[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word: tuple[str, ...] = (*token[:-1], token[-1] + "</w>")
        pairs = _pairs(word)
        while pairs:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        result = list(word)
        if len(self._cache) < 100_000:
            self._cache[token] = result
        return result

    @staticmethod
    def _clean(text: str) -> str:
        # open_clip runs ftfy.fix_text first; NFC normalisation covers the common case without the dependency.
        text = unicodedata.normalize("NFC", html.unescape(html.unescape(text)))
        return re.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in _CLIP_PATTERN.findall(self._clean(text)):
            chars = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(chars))
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > self.context_length:  # truncate, keeping <end_of_text> last as CLIP does
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out


def tokenizer_from_params(model_dir: Path, params: dict[str, Any], source: str = "") -> Tokenizer:
    """The tokenizer a text encoder's sidecar describes (see the module docstring)."""
    spec = params.get("tokenizer")
    if spec is None:
        if source == "test" and "vocab_size" in params and "seq_len" in params:
            return ByteTokenizer(int(params["vocab_size"]), int(params["seq_len"]))
        raise TokenizerError(f"{model_dir / 'maam.json'}: params.tokenizer is missing; the text encoder needs one")
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        raise TokenizerError(f"{model_dir / 'maam.json'}: params.tokenizer must be an object with a 'kind'")
    kind = spec["kind"]
    if kind == "test":
        return ByteTokenizer(int(spec.get("vocab_size", params.get("vocab_size", 0))),
                             int(spec.get("seq_len", params.get("seq_len", 0))))
    if kind == "clip-bpe":
        vocab_file = model_dir / str(spec.get("vocab_file", "bpe_simple_vocab_16e6.txt.gz"))
        return ClipBpeTokenizer(vocab_file, int(spec.get("context_length", 77)))
    if kind == "wordpiece":
        vocab_file = model_dir / str(spec.get("vocab_file", "vocab.txt"))
        length = int(spec.get("context_length", spec.get("max_length", 128)))
        # The MiniLM export writes `lowercase` (Hugging Face's do_lower_case); `lower_case` is accepted too.
        lower_case = spec.get("lowercase", spec.get("lower_case", True))
        return WordPieceTokenizer(vocab_file, length, bool(lower_case))
    raise TokenizerError(
        f"{model_dir / 'maam.json'}: unknown tokenizer kind {kind!r} (known: clip-bpe, wordpiece, test)"
    )


class WordPieceTokenizer:
    """BERT's uncased WordPiece (the sentence-transformers MiniLM tokenizer): [CLS] ... [SEP], zero padded.

    `vocab_file` is a `vocab.txt` (one token a line) or a Hugging Face `tokenizer.json` (its model.vocab).
    """

    def __init__(self, vocab_file: Path, context_length: int = 128, lower_case: bool = True) -> None:
        try:
            if vocab_file.suffix == ".json":
                import json

                vocab = dict(json.loads(vocab_file.read_text(encoding="utf-8"))["model"]["vocab"])
            else:
                lines = vocab_file.read_text(encoding="utf-8").splitlines()
                vocab = {token: i for i, token in enumerate(lines)}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TokenizerError(f"{vocab_file}: cannot read the WordPiece vocabulary: {exc}") from exc
        missing = [t for t in ("[CLS]", "[SEP]", "[UNK]") if t not in vocab]
        if missing:
            raise TokenizerError(f"{vocab_file}: not a BERT vocabulary (missing {missing})")
        self.vocab = vocab
        self.context_length = context_length
        self.lower_case = lower_case
        self.cls, self.sep, self.unk = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]

    def _words(self, text: str) -> list[str]:
        if self.lower_case:
            text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
        return re.findall(r"\w+|[^\w\s]", text)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self._words(text):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        pieces.append(self.vocab[piece])
                        break
                    end -= 1
                if end == start:  # no piece matches: the whole word is unknown, as BERT does
                    pieces = [self.unk]
                    break
                start = end
            ids.extend(pieces)
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), np.int64)
        for row, text in enumerate(texts):
            ids = [self.cls, *self.encode(text)[: self.context_length - 2], self.sep]
            out[row, : len(ids)] = ids
        return out
