"""DHF1K (Wang et al., 2018) for MV-SD: 700 annotated videos (600 train, 100 val; the 300 test videos have no
public maps), 640 × 360, 30 fps, fixations of 17 observers.

Layout read here (the frame-per-file layout of the TASED-Net/ViNet loaders):

    ROOT/train/0001/images/0001.png   the video's frames, 1-based
    ROOT/train/0001/maps/0001.png     fixation density map (grey 0–255)
    ROOT/train/0001/fixation/0001.png binary fixation map (non-zero = fixated)
    ROOT/val/0601/...

The official release has `annotation/NNNN/{maps,fixation}` and `video/NNN.AVI`; `extract_frames` writes
`images/` from the AVIs and arranges that release into this layout (videos 1–600 train, 601–700 val).

Training clips: `clip_frames` consecutive frames resized to `resize`, and, each with probability 0.5,
random crop to `image_size`, colour jitter, one dropped frame, a frame-rate change (every 2nd frame) and
time inversion (3.3.4); otherwise frames are resized to `image_size` directly."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.functional import InterpolationMode, crop, normalize, resize, to_tensor
from torchvision.transforms.v2 import ColorJitter

from services.models.errors import ModelsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAIN_VIDEOS, VAL_VIDEOS = range(1, 601), range(601, 701)


@dataclass(frozen=True)
class Video:
    name: str
    frames: list[Path]
    maps: list[Path]
    fixations: list[Path]


def list_videos(root: Path, split: str) -> list[Video]:
    base = Path(root) / split
    if not base.is_dir():
        raise ModelsError(f"{base} does not exist; the DHF1K layout is ROOT/{split}/NNNN/{{images,maps,fixation}}")
    videos = []
    for directory in sorted(p for p in base.iterdir() if p.is_dir()):
        frames = sorted((directory / "images").glob("*.png")) + sorted((directory / "images").glob("*.jpg"))
        maps = sorted((directory / "maps").glob("*.png"))
        fixations = sorted((directory / "fixation").glob("*.png"))
        count = min(len(frames), len(maps), len(fixations))
        if count:
            videos.append(Video(directory.name, frames[:count], maps[:count], fixations[:count]))
    if not videos:
        raise ModelsError(f"no annotated video under {base} (each needs images/, maps/ and fixation/ PNGs)")
    return videos


def _grey(path: Path) -> Image.Image:
    return Image.open(path).convert("L")


class DHF1KClips(Dataset):
    """Random training clips (one per video per epoch): frames [T, 3, S, S] normalised, maps [T, S, S] in
    [0, 1], fixations [T, S, S] in {0, 1}."""

    def __init__(
        self, root: Path, split: str = "train", *, image_size: int = 224, resize_to: int = 256, clip_frames: int = 8,
        augment: float = 0.5, seed: int = 0,
    ) -> None:
        self.videos = list_videos(root, split)
        self.image_size, self.resize_to, self.clip_frames = image_size, resize_to, clip_frames
        self.augment = augment if split == "train" else 0.0
        self.rng = random.Random(seed)
        self.jitter = ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)

    def __len__(self) -> int:
        return len(self.videos)

    def _indices(self, count: int) -> list[int]:
        stride = 2 if self.rng.random() < self.augment and count >= 2 * self.clip_frames else 1  # FrameRate
        drop = self.rng.random() < self.augment and count > stride * self.clip_frames  # DropFrame
        span = stride * (self.clip_frames + int(drop))
        start = self.rng.randrange(0, max(1, count - span + 1))
        picks = [min(count - 1, start + stride * i) for i in range(self.clip_frames + int(drop))]
        if drop:
            del picks[self.rng.randrange(len(picks))]
        if self.rng.random() < self.augment:  # Inversion
            picks.reverse()
        return picks

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video = self.videos[index]
        picks = self._indices(len(video.frames))
        do_crop = self.rng.random() < self.augment and self.resize_to > self.image_size
        do_jitter = self.rng.random() < self.augment
        size = self.resize_to if do_crop else self.image_size
        top = self.rng.randrange(0, size - self.image_size + 1) if do_crop else 0
        left = self.rng.randrange(0, size - self.image_size + 1) if do_crop else 0
        frames, maps, fixations = [], [], []
        for i in picks:
            image = resize(Image.open(video.frames[i]).convert("RGB"), [size, size])
            density = resize(_grey(video.maps[i]), [size, size])
            fixation = resize(_grey(video.fixations[i]), [size, size], interpolation=InterpolationMode.NEAREST)
            if do_crop:
                image, density, fixation = (crop(x, top, left, self.image_size, self.image_size)
                                            for x in (image, density, fixation))
            frames.append(to_tensor(image))
            maps.append(to_tensor(density)[0])
            fixations.append((to_tensor(fixation)[0] > 0).float())
        clip = torch.stack(frames)
        if do_jitter:
            clip = self.jitter(clip)  # one draw of the jitter parameters for the whole clip
        clip = normalize(clip, IMAGENET_MEAN, IMAGENET_STD)
        return {"frames": clip, "maps": torch.stack(maps), "fixations": torch.stack(fixations)}


def load_frame(path: Path, image_size: int) -> torch.Tensor:
    """One frame as the model takes it (evaluation: resized, normalised)."""
    image = resize(Image.open(path).convert("RGB"), [image_size, image_size])
    return normalize(to_tensor(image), IMAGENET_MEAN, IMAGENET_STD)


def load_ground_truth(video: Video, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(density map in [0, 1], binary fixation map) at the dataset's own resolution."""
    density = np.asarray(_grey(video.maps[index]), np.float64) / 255.0
    fixation = np.asarray(_grey(video.fixations[index])) > 0
    return density, fixation


def extract_frames(release: Path, target: Path) -> int:
    """Arranges the official DHF1K release (`annotation/NNNN/{maps,fixation}`, `video/NNN.AVI`) into the
    layout above, decoding each AVI's frames with PyAV; returns the number of videos written."""
    import av

    release, target = Path(release), Path(target)
    written = 0
    for number in (*TRAIN_VIDEOS, *VAL_VIDEOS):
        annotation = release / "annotation" / f"{number:04d}"
        avi = release / "video" / f"{number:03d}.AVI"
        if not annotation.is_dir() or not avi.is_file():
            continue
        split = "train" if number in TRAIN_VIDEOS else "val"
        out = target / split / f"{number:04d}"
        (out / "images").mkdir(parents=True, exist_ok=True)
        for kind in ("maps", "fixation"):
            if not (out / kind).exists():
                shutil.copytree(annotation / kind, out / kind)
        with av.open(str(avi)) as container:
            for i, frame in enumerate(container.decode(video=0), start=1):
                frame.to_image().save(out / "images" / f"{i:04d}.png")
        written += 1
    if not written:
        raise ModelsError(f"{release} holds no DHF1K video with its annotation (annotation/NNNN, video/NNN.AVI)")
    return written
