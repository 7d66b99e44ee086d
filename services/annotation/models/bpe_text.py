"""Token ids -> text for GPT-2's byte-level BPE (the captioner's decoder vocabulary), with Hugging Face
`tokenizers` (no transformers at serve time), from the `vocab.json` (+ `merges.txt`) or `tokenizer.json`
that `maam models pull` copies into the model dir."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models

from services.common.text_tokenizers import TokenizerError

# What transformers' `clean_up_tokenization` undoes when tokenizer_config.json asks for it (a step of transformers,
# not of `tokenizers`).
_CLEANUPS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)


class ByteBpeDecoder:
    """GPT-2 byte-level BPE ids -> text, special tokens skipped (as `decode(skip_special_tokens=True)`)."""

    def __init__(self, tokenizer: Tokenizer, special_ids: Iterable[int] = (), *, clean_up_spaces: bool = False) -> None:
        self.tokenizer = tokenizer
        self.special_ids = frozenset(int(i) for i in special_ids)
        self.clean_up_spaces = clean_up_spaces

    @classmethod
    def from_dir(
        cls, model_dir: Path, vocab_file: str = "vocab.json", special_ids: Iterable[int] = ()
    ) -> ByteBpeDecoder:
        """Loaded once per model dir; a reinstall (new file times) loads it again."""
        names = (vocab_file, "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
        stamps = tuple(_mtime(model_dir / name) for name in names)
        return _load(model_dir.resolve(), vocab_file, frozenset(special_ids), stamps)

    def decode(self, ids: Iterable[int]) -> str:
        kept = []
        for i in ids:
            i = int(i)
            if i in self.special_ids:
                continue
            if self.tokenizer.id_to_token(i) is None:
                size = self.tokenizer.get_vocab_size(with_added_tokens=True)
                raise TokenizerError(f"token id {i} is not in the vocabulary ({size} tokens)")
            kept.append(i)
        # Bytes of a character split across tokens that never completes decode to U+FFFD.
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        if self.clean_up_spaces:
            for before, after in _CLEANUPS:
                text = text.replace(before, after)
        return text


@lru_cache(maxsize=8)
def _load(model_dir: Path, vocab_file: str, special_ids: frozenset[int], _stamps: tuple[int, ...]) -> ByteBpeDecoder:
    """From `vocab_file` (vocab.json, what transformers 4 saves; its specials from special_tokens_map.json) or else
    `tokenizer.json` (the `tokenizers` file, all that transformers 5 saves for GPT-2; specials marked in it)."""
    path = model_dir / vocab_file
    fast = model_dir / "tokenizer.json"
    if path.is_file():
        vocab = _read_json(path)
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise TokenizerError(f"{path}: not a GPT-2 vocabulary (expected a JSON object of token -> id)")
        merges = _read_merges(model_dir / "merges.txt")
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens([AddedToken(name, special=True) for name in _mapped_special_names(model_dir)
                                      if name in vocab])
    elif fast.is_file():
        try:
            tokenizer = Tokenizer.from_file(str(fast))
        except Exception as exc:  # the library raises a bare Exception for a malformed file
            raise TokenizerError(f"{fast}: not a usable tokenizer.json: {exc}") from exc
        if not isinstance(tokenizer.model, models.BPE):
            raise TokenizerError(f"{fast}: not a BPE tokenizer.json (its model is {type(tokenizer.model).__name__})")
    else:
        raise TokenizerError(
            f"{path} (or tokenizer.json) is missing: the captioner needs its GPT-2 vocabulary; "
            "reinstall it with `maam models pull NAME`"
        )
    config = model_dir / "tokenizer_config.json"
    settings = _read_json(config) if config.is_file() else {}
    clean_up = bool(settings.get("clean_up_tokenization_spaces", False)) if isinstance(settings, dict) else False
    return ByteBpeDecoder(tokenizer, special_ids, clean_up_spaces=clean_up)


def _read_merges(path: Path) -> list[tuple[str, str]]:
    """merges.txt's pairs; decoding needs none, so a missing file is no merges."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: cannot read the merges file: {exc}") from exc
    pairs = [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#version")]
    if any(len(pair) != 2 for pair in pairs):
        raise TokenizerError(f"{path}: not a BPE merges file (expected 'a b' pairs)")
    return [(a, b) for a, b in pairs]


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


def _mapped_special_names(model_dir: Path) -> list[str]:
    """The tokens special_tokens_map.json names (bos/eos/unk/pad...), when the file is there."""
    path = model_dir / "special_tokens_map.json"
    if not path.is_file():
        return []
    entries = _read_json(path)
    names: list[str] = []
    for value in entries.values() if isinstance(entries, dict) else ():
        for item in value if isinstance(value, list) else [value]:
            content = item.get("content") if isinstance(item, dict) else item
            if isinstance(content, str):
                names.append(content)
    return names
