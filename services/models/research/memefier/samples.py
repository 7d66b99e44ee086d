"""MemeFier's training samples: the image through CLIP's preprocessing, the cleaned text as CLIP BPE ids,
the demographic tokens of the depicted persons, the caption as word ids of the caption vocabulary (every
word of the captions file; <pad> 0, <unk> 1, <sos> 2, <eos> 3) and the targets per head."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from services.common.text_encoding import clean_meme_text
from services.models.errors import ModelsError
from services.models.research.memefier.datasets import Head, MemeRecord
from services.models.research.memefier.model import ATTRIBUTES

PAD, UNK, SOS, EOS = 0, 1, 2, 3


class CaptionVocabulary:
    def __init__(self, captions: Sequence[str]) -> None:
        words = Counter(w for c in captions for w in clean_meme_text(c).split())
        self.words = ["<pad>", "<unk>", "<sos>", "<eos>", *(w for w, _ in words.most_common())]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.max_words = max((len(clean_meme_text(c).split()) for c in captions), default=0)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def length(self) -> int:
        """Tokens per encoded caption: <sos>, the longest caption's words, <eos>."""
        return self.max_words + 2

    def encode(self, caption: str) -> list[int]:
        ids = [SOS, *(self.index.get(w, UNK) for w in clean_meme_text(caption).split()[: self.max_words]), EOS]
        return ids + [PAD] * (self.length - len(ids))


class MemeSamples(Dataset):
    def __init__(
        self,
        records: Sequence[MemeRecord],
        heads: Sequence[Head],
        transform: Callable[[Image.Image], torch.Tensor],
        tokenize: Callable[[list[str]], torch.Tensor],
        *,
        captions: dict[str, str] | None = None,
        vocabulary: CaptionVocabulary | None = None,
        people: dict[str, list[tuple[str, str, str]]] | None = None,
        max_persons: int = 7,
    ) -> None:
        self.records, self.heads, self.transform, self.tokenize = list(records), list(heads), transform, tokenize
        self.captions, self.vocabulary, self.people = captions, vocabulary, people
        self.max_persons = max_persons
        self.attribute_index = {name: i for i, name in enumerate(ATTRIBUTES)}

    def __len__(self) -> int:
        return len(self.records)

    def attributes(self, image: Path) -> torch.Tensor:
        ids = [self.attribute_index.get(label, 0) for person in (self.people or {}).get(image.stem, [])
               for label in person][: 3 * self.max_persons]
        return torch.tensor(ids + [0] * (3 * self.max_persons - len(ids)), dtype=torch.long)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        try:
            with Image.open(record.image) as image:
                pixels = self.transform(image.convert("RGB"))
        except OSError as exc:  # PIL's truncated-image setting is process-wide, so it is not switched on here
            raise ModelsError(f"cannot read the meme image {record.image}: {exc}") from exc
        sample = {
            "images": pixels,
            "input_ids": self.tokenize([clean_meme_text(record.text)])[0].long(),
            "attributes": self.attributes(record.image),
        }
        for head in self.heads:
            sample[f"target_{head.name}"] = torch.tensor(record.targets[head.name], dtype=torch.long)
        if self.vocabulary is not None:
            caption = (self.captions or {}).get(record.image.name, "")
            sample["caption"] = torch.tensor(self.vocabulary.encode(caption), dtype=torch.long)
        return sample
