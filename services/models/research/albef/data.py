"""Image–caption pairs in ALBEF's dataset json format (its coco_train.json, flickr30k_test.json, …): a list
of {"image": path relative to image_root, "caption": text} for training, {"image", "caption": [texts]} for
testing. Images: resized to R × R (bicubic), CLIP mean/std; captions: ALBEF's `pre_caption` (lower case,
punctuation dropped, at most 30 words) then BERT WordPiece."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode, v2

from services.common.text_tokenizers import WordPieceTokenizer
from services.models.errors import ModelsError
from services.models.research.albef.export import CLIP_MEAN, CLIP_STD

MAX_WORDS = 30


def pre_caption(caption: str, max_words: int = MAX_WORDS) -> str:
    caption = re.sub(r"([,.'!?\"()*#:;~])", "", caption.lower()).replace("-", " ").replace("/", " ")
    caption = caption.replace("<person>", "person")
    return " ".join(re.sub(r"\s{2,}", " ", caption).strip().split()[:max_words])


@dataclass(frozen=True)
class Pairs:
    images: list[Path]
    captions: list[str]
    caption_image: list[int]  # image index of each caption


def read_pairs(annotation: Path, image_root: Path) -> Pairs:
    try:
        items = json.loads(Path(annotation).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelsError(f"cannot read the caption file {annotation}: {exc}") from exc
    images: list[Path] = []
    index: dict[str, int] = {}
    captions: list[str] = []
    owner: list[int] = []
    for item in items:
        path = str(item["image"])
        if path not in index:
            index[path] = len(images)
            images.append(Path(image_root) / path)
        texts = item["caption"] if isinstance(item["caption"], list) else [item["caption"]]
        for text in texts:
            captions.append(pre_caption(str(text)))
            owner.append(index[path])
    if not captions:
        raise ModelsError(f"{annotation} holds no caption")
    return Pairs(images, captions, owner)


def image_transform(size: int) -> v2.Compose:
    return v2.Compose([
        v2.Resize((size, size), interpolation=InterpolationMode.BICUBIC), v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(CLIP_MEAN, CLIP_STD),
    ])


class CaptionPairs(Dataset):
    """One sample per caption: its image, its token ids and attention mask."""

    def __init__(self, pairs: Pairs, tokenizer: WordPieceTokenizer, size: int) -> None:
        self.pairs, self.tokenizer, self.transform = pairs, tokenizer, image_transform(size)

    def __len__(self) -> int:
        return len(self.pairs.captions)

    def image(self, index: int) -> torch.Tensor:
        with Image.open(self.pairs.images[index]) as image:
            return self.transform(image.convert("RGB"))

    def tokens(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.tokenizer(captions)
        return torch.from_numpy(ids), torch.from_numpy((ids != 0).astype(np.int64))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids, mask = self.tokens([self.pairs.captions[index]])
        return {"images": self.image(self.pairs.caption_image[index]), "input_ids": ids[0], "attention_mask": mask[0]}
