"""Readers of the three meme datasets of the source document, in their published layouts, plus a folder
layout for training the meme detector head.

- Facebook Hateful Memes (FBHM): `ROOT/train.jsonl`, `ROOT/dev.jsonl` (`dev_seen.jsonl` in the phase-2
  release), lines `{"id", "img": "img/42953.png", "label": 0|1, "text"}`; the test split has no labels.
  Splits: train, val (= dev, on which the document reports).
- Memotion7k: `ROOT/labels.csv` (image_name, text_ocr, text_corrected, humour, sarcasm, offensive,
  motivational, overall_sentiment) with images in `ROOT/images/`; the SemEval test set in
  `ROOT/test_data/2000_testdata.csv` + `ROOT/test_data/Meme_groundTruth .csv` (the release's file name has
  that space; without it is accepted), images in `ROOT/test_data/2000_data/`. train/val: a seeded 90/10
  split of labels.csv (seed 42, as MemeFier's code), test: the test set (the document reports on it).
- MultiOFF: `ROOT/Split Dataset/{Training,Validation,Testing}_meme_dataset.csv` (image_name, sentence,
  label ∈ {offensive, Non-offensiv}), images in `ROOT/Labelled Images/`.
- meme detection (this project's layout): `ROOT/{train,val,test}/{meme,not_meme}/*.{jpg,png,…}` and an
  optional `ROOT/texts.jsonl` of `{"img": "train/meme/x.jpg", "text": …}` (the meme's text; absent → none).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.models.errors import ModelsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


@dataclass(frozen=True)
class MemeRecord:
    image: Path
    text: str
    targets: dict[str, int] = field(default_factory=dict)  # head -> class index


@dataclass(frozen=True)
class Head:
    name: str
    classes: int  # 1 = binary (sigmoid + BCE), more = softmax + cross-entropy


def heads_for(kind: str, task: str = "a") -> tuple[Head, ...]:
    if kind == "fbhm":
        return (Head("hateful", 1),)
    if kind == "multioff":
        return (Head("offensive", 1),)
    if kind == "meme_detection":
        return (Head("meme", 1),)
    if kind == "memotion7k":
        if task == "a":
            return (Head("sentiment", 3),)
        levels = 4 if task == "c" else 1
        return (Head("humour", levels), Head("sarcasm", levels), Head("offensive", levels), Head("motivational", 1))
    raise ModelsError(f"unknown meme dataset {kind!r}")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise ModelsError(f"{path} is missing ({what})")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        return list(csv.DictReader(handle))


def read_fbhm(root: Path, split: str) -> list[MemeRecord]:
    names = {"train": ("train.jsonl",), "val": ("dev.jsonl", "dev_seen.jsonl"), "test": ("test.jsonl",)}[split]
    path = next((root / n for n in names if (root / n).is_file()), root / names[0])
    records = []
    for line in _require(path, "the Hateful Memes annotations").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if "label" not in item:
            raise ModelsError(f"{path} has no labels (the FBHM test split is unlabelled; use val)")
        records.append(MemeRecord(root / item["img"], str(item.get("text", "")), {"hateful": int(item["label"])}))
    return records


# Memotion7k's label names -> class index per task; task b merges every level above "not_*" into 1.
_LEVELS = {
    "humour": ("not_funny", "funny", "very_funny", "hilarious"),
    "sarcasm": ("not_sarcastic", "general", "twisted_meaning", "very_twisted"),
    "offensive": ("not_offensive", "slight", "very_offensive", "hateful_offensive"),
    "motivational": ("not_motivational", "motivational"),
}
_SENTIMENT = {"very_negative": 2, "negative": 2, "neutral": 0, "positive": 1, "very_positive": 1}


def _memotion_targets(levels: dict[str, int], sentiment: int, task: str) -> dict[str, int]:
    if task == "a":
        return {"sentiment": sentiment}
    if task == "b":
        return {k: int(v > 0) for k, v in levels.items()}
    return dict(levels)


def read_memotion7k(root: Path, split: str, task: str = "a", seed: int = 42) -> list[MemeRecord]:
    if split in ("train", "val"):
        rows = _rows(_require(root / "labels.csv", "Memotion7k's labels"))
        keep = np.random.default_rng(seed).uniform(0, 1, len(rows)) < 0.9
        records = []
        for row, in_train in zip(rows, keep, strict=True):
            if in_train != (split == "train"):
                continue
            try:
                levels = {k: names.index(row[k].strip()) for k, names in _LEVELS.items()}
                sentiment = _SENTIMENT[row["overall_sentiment"].strip()]
            except (KeyError, ValueError) as exc:
                raise ModelsError(f"labels.csv: unexpected label in row {row.get('image_name')!r}: {exc}") from exc
            records.append(MemeRecord(root / "images" / row["image_name"], row.get("text_ocr") or "",
                                      _memotion_targets(levels, sentiment, task)))
        return records
    base = root / "test_data"
    texts = {r["Image_name"]: r.get("OCR_extracted_text") or "" for r in _rows(_require(base / "2000_testdata.csv",
                                                                                          "the test texts"))}
    truth = next((base / n for n in ("Meme_groundTruth .csv", "Meme_groundTruth.csv") if (base / n).is_file()),
                 base / "Meme_groundTruth.csv")
    records = []
    for row in _rows(_require(truth, "the test labels")):
        code = row["Labels"].strip()  # "<sentiment -1|0|1>_<humour><sarcasm><offensive><motivational>"
        sentiment = {-1: 2, 0: 0, 1: 1}[int(code[: code.index("_")])]
        levels = dict(zip(_LEVELS, (int(c) for c in code[-4:]), strict=True))
        name = row["Image_name"]
        records.append(MemeRecord(base / "2000_data" / name, texts.get(name, ""),
                                  _memotion_targets(levels, sentiment, task)))
    return records


def read_multioff(root: Path, split: str) -> list[MemeRecord]:
    name = {"train": "Training", "val": "Validation", "test": "Testing"}[split]
    path = _require(root / "Split Dataset" / f"{name}_meme_dataset.csv", "MultiOFF's split")
    records = []
    for row in _rows(path):
        label = row["label"].strip().lower()
        if not label.startswith(("off", "non")):
            raise ModelsError(f"{path}: unexpected label {row['label']!r}")
        records.append(MemeRecord(root / "Labelled Images" / row["image_name"], row.get("sentence") or "",
                                  {"offensive": int(label.startswith("off"))}))
    return records


def read_meme_detection(root: Path, split: str) -> list[MemeRecord]:
    texts: dict[str, str] = {}
    if (root / "texts.jsonl").is_file():
        for line in (root / "texts.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                texts[str(item["img"])] = str(item.get("text", ""))
    records = []
    for label, folder in ((1, "meme"), (0, "not_meme")):
        directory = _require(root / split / folder, f"the {folder} images of the {split} split")
        for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            records.append(MemeRecord(path, texts.get(path.relative_to(root).as_posix(), ""), {"meme": label}))
    return records


def read_split(kind: str, root: Path, split: str, task: str = "a") -> list[MemeRecord]:
    if root is None or not Path(root).is_dir():
        raise ModelsError(f"the {kind} dataset root {root} is not a directory")
    root = Path(root)
    if kind == "fbhm":
        records = read_fbhm(root, split)
    elif kind == "memotion7k":
        records = read_memotion7k(root, split, task)
    elif kind == "multioff":
        records = read_multioff(root, split)
    elif kind == "meme_detection":
        records = read_meme_detection(root, split)
    else:
        raise ModelsError(f"unknown meme dataset {kind!r}")
    if not records:
        raise ModelsError(f"the {kind} {split} split under {root} is empty")
    return records


def read_captions(path: Path) -> dict[str, str]:
    """{image file name: caption}."""
    data = json.loads(_require(Path(path), "the captions file").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ModelsError(f"{path} must be a JSON object mapping image file names to captions")
    return {Path(k).name: str(v) for k, v in data.items()}


def read_attributes(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """FairFace's CSV → {image stem: [(race, gender, age) per detected face]}; faces are named
    `<image stem>_face<N>.<ext>` in `face_name_align`."""
    people: dict[str, list[tuple[str, str, str]]] = {}
    for row in _rows(_require(Path(path), "the FairFace attributes")):
        stem = Path(row["face_name_align"]).stem.rsplit("_face", 1)[0]
        people.setdefault(stem, []).append((row["race"], row["gender"], row["age"]))
    return people
