"""Token ids -> text for GPT-2's byte-level BPE (the captioner's decoder vocabulary), from the
`vocab.json` or `tokenizer.json` that `maam models pull` copies into the model dir; no transformers
at serve time.

Decoding needs only the vocabulary: each token is a string of GPT-2's printable stand-ins for bytes,
so joining the tokens and mapping the characters back gives the UTF-8 bytes of the text (the merges
file matters only for encoding)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from services.common.text_tokenizers import TokenizerError, _bytes_to_unicode

# What transformers' `clean_up_tokenization` undoes when tokenizer_config.json asks for it.
_CLEANUPS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)


class ByteBpeDecoder:
    """GPT-2 byte-level BPE ids -> text, special tokens skipped (as `decode(skip_special_tokens=True)`)."""

    def __init__(
        self, vocab: dict[str, int], special_ids: Iterable[int] = (), *, clean_up_spaces: bool = False
    ) -> None:
        self.tokens = {int(i): token for token, i in vocab.items()}
        self.special_ids = frozenset(int(i) for i in special_ids)
        self.clean_up_spaces = clean_up_spaces
        self._byte_of = {char: byte for byte, char in _bytes_to_unicode().items()}

    @classmethod
    def from_dir(
        cls, model_dir: Path, vocab_file: str = "vocab.json", special_ids: Iterable[int] = ()
    ) -> ByteBpeDecoder:
        """Loaded once per model dir; a reinstall (new file times) loads it again."""
        stamps = tuple(_mtime(model_dir / name) for name in (vocab_file, "tokenizer.json", "tokenizer_config.json"))
        return _load(model_dir.resolve(), vocab_file, frozenset(special_ids), stamps)

    def decode(self, ids: Iterable[int]) -> str:
        pieces = []
        for i in ids:
            if i in self.special_ids:
                continue
            token = self.tokens.get(int(i))
            if token is None:
                raise TokenizerError(f"token id {i} is not in the vocabulary ({len(self.tokens)} tokens)")
            pieces.append(token)
        chars = "".join(pieces)
        # Added tokens (not byte stand-ins) would have no byte; keep them as UTF-8 of themselves.
        data = b"".join(
            bytes([self._byte_of[c]]) if c in self._byte_of else c.encode("utf-8") for c in chars
        )
        text = data.decode("utf-8", errors="replace")
        if self.clean_up_spaces:
            for before, after in _CLEANUPS:
                text = text.replace(before, after)
        return text


@lru_cache(maxsize=8)
def _load(model_dir: Path, vocab_file: str, special_ids: frozenset[int], _stamps: tuple[int, ...]) -> ByteBpeDecoder:
    """From `vocab_file` (vocab.json, what transformers 4 saves) or else `tokenizer.json` (the
    `tokenizers` file, all that transformers 5 saves for GPT-2): its model.vocab and added tokens."""
    path = model_dir / vocab_file
    fast = model_dir / "tokenizer.json"
    special = set(special_ids)
    if path.is_file():
        vocab = _read_json(path)
        special |= _mapped_special_ids(model_dir, vocab)
    elif fast.is_file():
        data = _read_json(fast)
        model = data.get("model") if isinstance(data, dict) else None
        vocab = model.get("vocab") if isinstance(model, dict) else None
        if not isinstance(vocab, dict):
            raise TokenizerError(f"{fast}: not a BPE tokenizer.json (no model.vocab)")
        vocab = dict(vocab)
        for added in data.get("added_tokens") or []:
            if isinstance(added, dict) and isinstance(added.get("id"), int) and isinstance(added.get("content"), str):
                vocab[added["content"]] = added["id"]
                if added.get("special"):
                    special.add(added["id"])
    else:
        raise TokenizerError(
            f"{path} (or tokenizer.json) is missing: the captioner needs its GPT-2 vocabulary; "
            "reinstall it with `maam models pull NAME`"
        )
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise TokenizerError(f"{path}: not a GPT-2 vocabulary (expected a JSON object of token -> id)")
    config = model_dir / "tokenizer_config.json"
    settings = _read_json(config) if config.is_file() else {}
    clean_up = bool(settings.get("clean_up_tokenization_spaces", False)) if isinstance(settings, dict) else False
    return ByteBpeDecoder(vocab, special, clean_up_spaces=clean_up)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerError(f"{path}: cannot read the tokenizer file: {exc}") from exc


def _mapped_special_ids(model_dir: Path, vocab: dict[str, int]) -> set[int]:
    """Ids of the tokens special_tokens_map.json names (bos/eos/unk/pad...), when the file is there."""
    path = model_dir / "special_tokens_map.json"
    if not path.is_file():
        return set()
    entries = _read_json(path)
    names: list[str] = []
    for value in entries.values() if isinstance(entries, dict) else ():
        for item in value if isinstance(value, list) else [value]:
            content = item.get("content") if isinstance(item, dict) else item
            if isinstance(content, str):
                names.append(content)
    return {vocab[name] for name in names if name in vocab}
