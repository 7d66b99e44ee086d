"""The real faces of the people tests: scikit-image's astronaut (Eileen Collins) and cameraman under many
edits, each a separate upload, and a generated video showing both."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance
from skimage import data as skdata

from tests.annotation.conftest import shots_video


def _rgb(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]).convert("RGB")


def photos() -> dict[str, Image.Image]:
    return {"astronaut": _rgb(skdata.astronaut()), "camera": _rgb(skdata.camera())}


def _encode(image: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


# Where each face is (pixels of the 512 x 512 photo): crops keep it.
CROPS = {"astronaut": (60, 0, 400, 330), "camera": (120, 0, 420, 300)}


def edits(name: str) -> dict[str, bytes]:
    """name -> encoded file of each edit of the photo."""
    image = photos()[name]
    background = _rgb(skdata.coffee()).resize((800, 600))
    pasted = background.copy()
    pasted.paste(image.resize((300, 300)), (420, 240))
    return {
        "original.png": _encode(image),
        "flip.png": _encode(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "crop.png": _encode(image.crop(CROPS[name])),
        "half.png": _encode(image.resize((256, 256), Image.Resampling.LANCZOS)),
        "large.png": _encode(image.resize((800, 800), Image.Resampling.BICUBIC)),
        "colour.png": _encode(ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(1.25)).enhance(0.4)),
        "contrast.png": _encode(ImageEnhance.Contrast(image).enhance(0.6)),
        "q30.jpg": _encode(image, "JPEG", quality=30),
        "rot10.png": _encode(image.rotate(10, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))),
        "pasted.png": _encode(pasted),
    }


def video_of_both() -> bytes:
    """A short MPEG-4 video: the astronaut's shot, then the cameraman's."""
    frames = [np.asarray(p) for p in photos().values()]
    return shots_video(frames, side=256)
