"""Tiny synthetic datasets in the source document's layouts (DHF1K, FBHM, Memotion7k, MultiOFF, ALBEF caption
json) and tiny model configurations, for the research models' tests. Labels follow the pixels (a red image is
hateful, a bright square is where viewers look), so a few training steps can lower the loss."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

TINY_CLIP: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_MEMEFIER: dict[str, Any] = {
    "d": 32, "encoder": {"h": 2, "dff": 32, "L": 1}, "decoder": {"d": 16, "h": 2, "dff": 16, "L": 1},
    "clip": {"custom": TINY_CLIP}, "dropout": 0.0, "fusion_dropout": 0.0,
}
TINY_MVSD: dict[str, Any] = {
    "image_size": 32, "channels": 8, "dim": 16, "encoder_depth": 1, "heads": 2, "temporal_depth": 1,
    "max_frames": 4, "decoder_depth": 1,
}
TINY_ALBEF: dict[str, Any] = {
    "image_res": 32, "vision_width": 32, "vision_depth": 1, "vision_heads": 2, "text_layers": 1, "text_width": 32,
    "text_heads": 2, "text_intermediate": 64, "vocab_size": 40, "max_positions": 40, "embed_dim": 16,
    "context_length": 12,
}
WORDS = ("a", "photo", "of", "red", "blue", "square", "cat", "dog", "people", "beach", "hate", "love", "them", "all",
         "my", "sky")


def _noisy(rng: np.random.Generator, colour: tuple[int, int, int], size: tuple[int, int] = (40, 48)) -> Image.Image:
    image = np.full((*size, 3), colour, np.int16) + rng.integers(-30, 30, (*size, 3))
    return Image.fromarray(image.clip(0, 255).astype(np.uint8))


def meme_image(rng: np.random.Generator, positive: bool) -> Image.Image:
    return _noisy(rng, (210, 40, 40) if positive else (40, 40, 210))


def meme_text(positive: bool) -> str:
    return "Hate them ALL!!! 2023" if positive else "love my cat, 100%"


def write_fbhm(root: Path, train: int = 16, dev: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    captions, faces = {}, []
    for split, count in (("train", train), ("dev", dev)):
        lines = []
        for i in range(count):
            label = i % 2
            name = f"{split}{i:02d}.png"
            meme_image(rng, bool(label)).save(root / "img" / name)
            lines.append(json.dumps({"id": i, "img": f"img/{name}", "label": label, "text": meme_text(bool(label))}))
            captions[name] = "a red square" if label else "a blue square"
            if i % 3 == 0:
                faces.append({"face_name_align": f"detected_faces/{Path(name).stem}_face0.jpg", "race": "White",
                              "gender": "Male" if label else "Female", "age": "20-29"})
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    (root / "captions.json").write_text(json.dumps(captions))
    with (root / "attributes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["face_name_align", "race", "gender", "age"])
        writer.writeheader()
        writer.writerows(faces)
    return root


_MEMOTION = ("image_name", "text_ocr", "text_corrected", "humour", "sarcasm", "offensive", "motivational",
             "overall_sentiment")


def write_memotion7k(root: Path, rows: int = 20, tests: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "test_data" / "2000_data").mkdir(parents=True, exist_ok=True)
    humour, sarcasm = ("not_funny", "funny", "very_funny", "hilarious"), ("not_sarcastic", "general",
                                                                          "twisted_meaning", "very_twisted")
    offensive, sentiment = ("not_offensive", "slight", "very_offensive", "hateful_offensive"), (
        "very_negative", "negative", "neutral", "positive", "very_positive")
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", *_MEMOTION])
        for i in range(rows):
            name = f"image_{i}.jpg"
            meme_image(rng, i % 2 == 0).save(root / "images" / name)
            writer.writerow([i, name, meme_text(i % 2 == 0), "x", humour[i % 4], sarcasm[(i + 1) % 4], offensive[i % 4],
                             ("not_motivational", "motivational")[i % 2], sentiment[i % 5]])
    with (root / "test_data" / "2000_testdata.csv").open("w", newline="") as texts, \
            (root / "test_data" / "Meme_groundTruth .csv").open("w", newline="") as truth:
        text_writer, truth_writer = csv.writer(texts), csv.writer(truth)
        text_writer.writerow(["Image_name", "Image_URL", "OCR_extracted_text", "corrected_text"])
        truth_writer.writerow(["Id", "Image_name", "Labels"])
        for i in range(tests):
            name = f"test_{i}.png"
            meme_image(rng, i % 2 == 0).save(root / "test_data" / "2000_data" / name)
            text_writer.writerow([name, "http://x", meme_text(i % 2 == 0), ""])
            truth_writer.writerow([i, name, f"{(-1, 0, 1)[i % 3]}_{i % 4}{(i + 1) % 4}{i % 4}{i % 2}"])
    return root


def write_multioff(root: Path, per_split: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "Labelled Images").mkdir(parents=True, exist_ok=True)
    (root / "Split Dataset").mkdir(parents=True, exist_ok=True)
    for split in ("Training", "Validation", "Testing"):
        with (root / "Split Dataset" / f"{split}_meme_dataset.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_name", "sentence", "label"])
            for i in range(per_split):
                name = f"{split}_{i}.jpg"
                meme_image(rng, i % 2 == 0).save(root / "Labelled Images" / name)
                writer.writerow([name, meme_text(i % 2 == 0), "offensive" if i % 2 == 0 else "Non-offensiv"])
    return root


def write_meme_detection(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """Memes (red, with text) against photos (blue, no text), for the meme detector head."""
    rng = np.random.default_rng(seed)
    texts = []
    for split in ("train", "val"):
        for folder, positive in (("meme", True), ("not_meme", False)):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                path = root / split / folder / f"{i}.png"
                meme_image(rng, positive).save(path)
                if positive:
                    texts.append(json.dumps({"img": f"{split}/{folder}/{i}.png", "text": meme_text(True)}))
    (root / "texts.jsonl").write_text("\n".join(texts) + "\n")
    return root


def saliency_frame(rng: np.random.Generator, size: int, centre: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """A noisy frame with a bright square at `centre`, its Gaussian density map and a fixation map."""
    frame = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
    y, x = centre
    frame[max(0, y - 3):y + 3, max(0, x - 3):x + 3] = 255
    rows, cols = np.mgrid[:size, :size]
    density = np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * 3.0**2))
    fixation = np.zeros((size, size), np.uint8)
    for dy, dx in ((0, 0), (1, -1), (-1, 2)):
        fixation[min(size - 1, y + dy), min(size - 1, x + dx)] = 255
    return frame, (density / density.max() * 255).astype(np.uint8), fixation


def write_dhf1k(root: Path, videos: dict[str, int] | None = None, frames: int = 4, size: int = 48,
                seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    number = 0
    for split, count in (videos or {"train": 3, "val": 2}).items():
        for _ in range(count):
            number += 1
            base = root / split / f"{number:04d}"
            for kind in ("images", "maps", "fixation"):
                (base / kind).mkdir(parents=True, exist_ok=True)
            start = rng.integers(8, size - 8, 2)
            for f in range(frames):
                centre = (int(start[0]), int(min(size - 6, start[1] + 2 * f)))
                frame, density, fixation = saliency_frame(rng, size, centre)
                Image.fromarray(frame).save(base / "images" / f"{f + 1:04d}.png")
                Image.fromarray(density).save(base / "maps" / f"{f + 1:04d}.png")
                Image.fromarray(fixation).save(base / "fixation" / f"{f + 1:04d}.png")
    return root


def write_vocab(path: Path) -> Path:
    """A BERT-style vocab.txt of the few words the caption datasets use."""
    tokens = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "."]
    path.write_text("\n".join(tokens) + "\n")
    return path


def write_caption_pairs(root: Path, images: int = 6, seed: int = 0) -> Path:
    """ALBEF's json format: train = one item per caption, test = captions listed per image."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    train, test = [], []
    colours = {"red": (220, 30, 30), "blue": (30, 30, 220), "sky": (120, 180, 250)}
    for i in range(images):
        word = list(colours)[i % 3]
        name = f"images/{i}.png"
        _noisy(rng, colours[word], (32, 32)).save(root / name)
        captions = [f"a photo of {word} square", f"{word}!"]
        train.extend({"image": name, "caption": c} for c in captions)
        test.append({"image": name, "caption": captions})
    (root / "train.json").write_text(json.dumps(train))
    (root / "test.json").write_text(json.dumps(test))
    return root
