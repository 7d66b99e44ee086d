"""Text tokenizers for exported text encoders, built with Hugging Face `tokenizers` (no torch, no
transformers or open_clip at serve time) from the vocabulary files the model repository carries.

A text encoder's `maam.json` names its tokenizer in `params.tokenizer`:
- `{"kind": "clip-bpe", "vocab_file": "bpe_simple_vocab_16e6.txt.gz", "context_length": 77}`: OpenAI CLIP's
  byte-level BPE, built from open_clip's merges file (same vocabulary, same ids);
- `{"kind": "wordpiece", "vocab_file": "vocab.txt" | "tokenizer.json", "max_length" | "context_length": 128,
  "lowercase": true}`: BERT's WordPiece (sentence-transformers MiniLM: uncased);
- `{"kind": "test", "vocab_size": V, "seq_len": L}`: byte values mod V, for the tiny test models only.
Test models written by `tests/support/test_models.py` carry `vocab_size`/`seq_len` in `params` and no
`tokenizer` entry; they get the test tokenizer.

Text that looks like a special token ("[SEP]", "<end_of_text>") is tokenized as ordinary text: a user's
words never become control tokens.
"""

from __future__ import annotations

import gzip
import html
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as _HfTokenizer


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


def byte_level_alphabet() -> list[str]:
    """GPT-2/CLIP's 256 printable stand-ins for bytes, in their vocabulary order (by code point: the
    printable bytes map to themselves, the others to U+0100 onwards in byte order)."""
    return sorted(pre_tokenizers.ByteLevel.alphabet())


class _EncoderTokenizer:
    """A `tokenizers` pipeline that wraps each text in start/end ids, truncates (keeping the end id) and
    zero-pads to context_length."""

    def __init__(
        self, tokenizer: _HfTokenizer, context_length: int, start: tuple[str, int], end: tuple[str, int]
    ) -> None:
        if context_length < 2:
            raise TokenizerError(f"context_length must be at least 2 (start and end tokens), got {context_length}")
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{start[0]} $A {end[0]}", special_tokens=[start, end]
        )
        self._plain = _HfTokenizer.from_str(tokenizer.to_str())  # for encode(): no truncation, no padding
        tokenizer.enable_truncation(max_length=context_length)
        # Zero padding whatever id 0 is ("!" for CLIP, [PAD] for BERT): the encoders were exported so.
        tokenizer.enable_padding(length=context_length, pad_id=0, pad_token=tokenizer.id_to_token(0) or "")
        self._tokenizer = tokenizer
        self.context_length = context_length

    def _prepare(self, text: str) -> str:
        return text

    def encode(self, text: str) -> list[int]:
        """The ids of text alone: no start/end ids, no truncation, no padding."""
        return self._plain.encode(self._prepare(text), add_special_tokens=False).ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch([self._prepare(t) for t in texts])
        if not encoded:
            return np.zeros((0, self.context_length), np.int64)
        return np.array([e.ids for e in encoded], np.int64)


# open_clip's pre-tokenization pattern (`regex` syntax), applied after lower-casing. "<end_of_text>" typed in a
# text stays one word, split by BPE like any other: only the template adds the real start and end ids.
_CLIP_PATTERN = r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

# The merges file has more lines than CLIP's vocabulary uses; open_clip keeps this many.
_CLIP_MERGES = 49152 - 256 - 2


class ClipBpeTokenizer(_EncoderTokenizer):
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
        pairs = [(a, b) for a, b in merges]
        # open_clip's vocabulary: the bytes, the bytes ending a word, each merge's result, the two specials.
        alphabet = byte_level_alphabet()
        tokens = [*alphabet, *(c + "</w>" for c in alphabet), *("".join(m) for m in pairs)]
        tokens += ["<start_of_text>", "<end_of_text>"]
        vocab = {token: i for i, token in enumerate(tokens)}
        self.sot, self.eot = vocab["<start_of_text>"], vocab["<end_of_text>"]
        tokenizer = _HfTokenizer(models.BPE(vocab=vocab, merges=pairs, end_of_word_suffix="</w>"))
        # open_clip also runs ftfy.fix_text; NFC covers the common case without the dependency.
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_CLIP_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tokenizer.decoder = decoders.ByteLevel()
        super().__init__(tokenizer, context_length, ("<start_of_text>", self.sot), ("<end_of_text>", self.eot))

    def _prepare(self, text: str) -> str:
        # open_clip unescapes HTML entities twice ("&amp;amp;" -> "&"); `tokenizers` has no such step.
        return html.unescape(html.unescape(text))


class WordPieceTokenizer(_EncoderTokenizer):
    """BERT's WordPiece (the sentence-transformers MiniLM tokenizer): [CLS] ... [SEP], zero padded.

    `vocab_file` is a `vocab.txt` (one token a line) or a Hugging Face `tokenizer.json` (its model.vocab).
    """

    def __init__(self, vocab_file: Path, context_length: int = 128, lower_case: bool = True) -> None:
        try:
            if vocab_file.suffix == ".json":
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
        self.lower_case = lower_case
        self.cls, self.sep, self.unk = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]
        tokenizer = _HfTokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        # As Hugging Face's BertTokenizer: accents are stripped exactly when lower-casing.
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower_case
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        super().__init__(tokenizer, context_length, ("[CLS]", self.cls), ("[SEP]", self.sep))


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
