"""Tokenisers for text encoders, chosen by the sidecar: BERT WordPiece when the model directory
has a `vocab.txt` (MiniLM and friends), else the hashing tokeniser that models declaring
`tokenizer: "hash"` (and the tiny test encoders, which have no vocabulary file) were built for."""

from __future__ import annotations

import re
import unicodedata
import zlib
from pathlib import Path

import numpy as np

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _basic_words(text: str, lower: bool = True) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower() if lower else text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return _WORD.findall(text)


class HashTokenizer:
    """Words -> ids by CRC32 modulo the vocabulary (ids 0 and 1 are padding and start)."""

    def __init__(self, vocab_size: int, seq_len: int) -> None:
        self.vocab_size, self.seq_len = vocab_size, seq_len

    def encode(self, text: str) -> dict[str, np.ndarray]:
        ids = [1] + [2 + zlib.crc32(w.encode()) % (self.vocab_size - 2) for w in _basic_words(text)]
        ids = ids[: self.seq_len]
        mask = [1] * len(ids) + [0] * (self.seq_len - len(ids))
        ids = ids + [0] * (self.seq_len - len(ids))
        return {"input_ids": np.asarray(ids, np.int64), "attention_mask": np.asarray(mask, np.int64)}


class WordPieceTokenizer:
    """BERT WordPiece (greedy longest-match-first) over a vocab.txt, with [CLS] ... [SEP]."""

    def __init__(self, vocab_path: Path, seq_len: int, lower: bool = True) -> None:
        tokens = vocab_path.read_text(encoding="utf-8").splitlines()
        self.vocab = {tok: i for i, tok in enumerate(tokens)}
        self.seq_len, self.lower = seq_len, lower
        self.unk = self.vocab.get("[UNK]", 0)

    def _pieces(self, word: str) -> list[int]:
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return pieces

    def encode(self, text: str) -> dict[str, np.ndarray]:
        ids = [self.vocab.get("[CLS]", 101)]
        for word in _basic_words(text, self.lower):
            ids.extend(self._pieces(word))
        ids = [*ids[:self.seq_len - 1], self.vocab.get("[SEP]", 102)]
        mask = [1] * len(ids) + [0] * (self.seq_len - len(ids))
        ids = ids + [self.vocab.get("[PAD]", 0)] * (self.seq_len - len(ids))
        return {
            "input_ids": np.asarray(ids, np.int64),
            "attention_mask": np.asarray(mask, np.int64),
            "token_type_ids": np.zeros(self.seq_len, np.int64),
        }


def tokenizer_for(model_dir: Path, params: dict) -> HashTokenizer | WordPieceTokenizer:
    seq_len = int(params.get("seq_len", 77))
    vocab = model_dir / str(params.get("vocab_file", "vocab.txt"))
    if params.get("tokenizer", "wordpiece" if vocab.is_file() else "hash") == "wordpiece":
        return WordPieceTokenizer(vocab, seq_len, bool(params.get("lowercase", True)))
    return HashTokenizer(int(params.get("vocab_size", 49408)), seq_len)
