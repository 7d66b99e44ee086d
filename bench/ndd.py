"""Near-duplicate detection benchmark: µAP (DISC21 micro average precision) and recall@1 per
transformation, for each NDD image descriptor and a pHash baseline (imagededup's) in the same run.

References are real photos (skimage.data, sklearn sample images); queries are edited copies of
them; distractors (>= 1000) are small tiles of the same and other photos (under 15 % of a photo's
area, so not near-duplicates of a whole photo), face photos and synthetic textures.

    python bench/ndd.py [--quick] [--deep-url HOST:PORT]
    python bench/ndd.py --scale 1000,10000,100000 [--quick]   # the scale run (distractors from other photos)
    python bench/ndd.py --video-only [--quick]   # only the videos: clip and picture-in-picture queries
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.ndd.descriptors import offline
from services.ndd.descriptors.calibration import calibrate

TOP_K = 10


# ---------------------------------------------------------------------------------------- data
def _rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        array = (255 * (array - array.min()) / max(1e-9, float(np.ptp(array)))).astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def reference_photos() -> dict[str, np.ndarray]:
    import skimage.data as data
    from sklearn.datasets import load_sample_images

    names = ["astronaut", "camera", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
             "coins", "retina", "moon", "clock", "page", "text"]
    photos = {name: _rgb(getattr(data, name)()) for name in names}
    photos["motorcycle"] = _rgb(data.stereo_motorcycle()[0])
    for path, image in zip(load_sample_images().filenames, load_sample_images().images, strict=True):
        photos[Path(path).stem] = _rgb(image)
    return photos


def _tile(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = photo.shape[:2]
    side = rng.uniform(0.15, 0.38)  # <= 0.38^2 = 14 % of the photo's area
    th, tw = max(16, int(height * side * rng.uniform(0.8, 1.2))), max(16, int(width * side * rng.uniform(0.8, 1.2)))
    y, x = rng.integers(0, height - th + 1), rng.integers(0, width - tw + 1)
    tile = photo[y : y + th, x : x + tw]
    if rng.random() < 0.5:
        tile = tile[:, ::-1]
    return np.ascontiguousarray(tile)


def _texture(rng: np.random.Generator) -> np.ndarray:
    import cv2

    size = int(rng.integers(96, 320))
    noise = rng.standard_normal((size, size, 3)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(1, 20)))
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    image = noise / (noise.std() + 1e-6) + rng.uniform(-2, 2) * ramp[..., None]
    if rng.random() < 0.5:
        image += np.sin(2 * np.pi * rng.uniform(2, 20) * ramp)[..., None]
    image = (image - image.min()) / (np.ptp(image) + 1e-6)
    return (image * 255).astype(np.uint8)


def distractors(photos: dict[str, np.ndarray], count: int, rng: np.random.Generator) -> list[np.ndarray]:
    import skimage.data as data

    others = [_rgb(getattr(data, n)()) for n in ("brick", "grass", "gravel", "cell", "shepp_logan_phantom",
                                                  "checkerboard", "horse", "binary_blobs", "logo")]
    faces = [_rgb(face) for face in data.lfw_subset()]
    sources = list(photos.values()) + others
    out: list[np.ndarray] = []
    out += [np.asarray(Image.fromarray(f).resize((100, 100))) for f in faces[: count // 8]]
    while len(out) < count:
        roll = rng.random()
        out.append(_texture(rng) if roll < 0.25 else _tile(sources[int(rng.integers(len(sources)))], rng))
    return out[:count]


# ----------------------------------------------------------------------------- transformations
def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def t_resize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = rng.choice([rng.uniform(0.25, 0.6), rng.uniform(1.3, 2.0)])
    aspect = rng.uniform(0.9, 1.1)
    return img.resize((max(16, int(img.width * scale * aspect)), max(16, int(img.height * scale))), Image.BILINEAR)


def t_crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    area = rng.uniform(0.7, 0.85)  # removes 15-30 % of the area
    fx = rng.uniform(max(area, 0.72), 1.0)
    fy = max(0.7, area / fx)
    w, h = int(img.width * fx), int(img.height * fy)
    x, y = int(rng.integers(0, img.width - w + 1)), int(rng.integers(0, img.height - h + 1))
    return img.crop((x, y, x + w, y + h))


def t_jpeg(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return _jpeg(img, 20)


def t_colour(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.4))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.6, 1.4))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.0, 2.0))
    hsv = np.asarray(img.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(20, 100))) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def t_rotate(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.rotate(float(rng.choice([-1, 1]) * rng.uniform(3, 10)), resample=Image.BILINEAR, expand=False)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def t_overlay(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Meme-style captions (bold text bands, 10-15 % of the height) or a logo over 25-40 % of the width."""
    img = img.copy()
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.5:
        words = ["BREAKING NEWS", "WHEN YOU SEE IT", "COPYRIGHT 2024", "#VIRAL LOL", "NOBODY:", "ME IRL"]
        size = max(10, int(img.height * rng.uniform(0.10, 0.15)))
        for y in (0.03, 0.97 - size / img.height * 1.2):
            text = str(rng.choice(words))
            colour = tuple(int(c) for c in rng.integers(128, 256, 3))
            draw.text((int(img.width * rng.uniform(0.02, 0.15)), int(img.height * y)), text, fill=colour,
                      font=_font(size), stroke_width=max(1, size // 10), stroke_fill=(0, 0, 0))
    else:
        import skimage.data as data

        logo = Image.fromarray(data.logo()).convert("RGBA")
        side = int(img.width * rng.uniform(0.25, 0.40))
        logo = logo.resize((side, side))
        x = int(rng.integers(0, max(1, img.width - side)))
        y = int(rng.integers(0, max(1, img.height - side)))
        img.paste(logo, (x, y), logo)
    return img


def t_flip(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.transpose(Image.FLIP_LEFT_RIGHT)


def _fit(img: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / img.width, height / img.height)
    return img.resize((max(16, int(img.width * scale)), max(16, int(img.height * scale))), Image.BILINEAR)


def t_pip(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Picture in picture: the photo pasted, at 45-70 % of the width, into a larger frame (a slide, a
    screenshot, a poster) of texture or flat colour."""
    frame_w, frame_h = 960, 720
    if rng.random() < 0.5:
        frame = Image.fromarray(_texture(rng)).resize((frame_w, frame_h))
    else:
        frame = Image.new("RGB", (frame_w, frame_h), tuple(int(c) for c in rng.integers(0, 256, 3)))
    inner = _fit(img, int(frame_w * rng.uniform(0.45, 0.70)), int(frame_h * 0.95))
    x, y = int(rng.integers(0, frame_w - inner.width + 1)), int(rng.integers(0, frame_h - inner.height + 1))
    frame.paste(inner, (x, y))
    return frame


def t_collage(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A frame of several pictures: the photo in one cell of a 2x2 grid, textures in the others."""
    cell_w, cell_h, gap = 460, 340, 12
    frame = Image.new("RGB", (2 * cell_w + 3 * gap, 2 * cell_h + 3 * gap), (245, 245, 245))
    mine = int(rng.integers(4))
    for cell in range(4):
        picture = img if cell == mine else Image.fromarray(_texture(rng))
        inner = _fit(picture, cell_w, cell_h)
        frame.paste(inner, (gap + (cell % 2) * (cell_w + gap), gap + (cell // 2) * (cell_h + gap)))
    return frame


TRANSFORMS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "resize": t_resize, "crop": t_crop, "jpeg20": t_jpeg, "colour": t_colour,
    "rotate": t_rotate, "overlay": t_overlay, "flip": t_flip, "pip": t_pip, "collage": t_collage,
}


@dataclass
class Query:
    transform: str
    source: int
    image: np.ndarray


def make_queries(photos: list[np.ndarray], per_photo: int, rng: np.random.Generator) -> list[Query]:
    queries: list[Query] = []
    for name, transform in TRANSFORMS.items():
        for source, photo in enumerate(photos):
            for _ in range(per_photo):
                # Every query is also re-saved as a JPEG, as shared copies are.
                edited = _jpeg(transform(Image.fromarray(photo), rng).convert("RGB"), 85)
                queries.append(Query(name, source, np.asarray(edited)))
    return queries


# ------------------------------------------------------------------------------------ metrics
def micro_ap(predictions: list[tuple[float, bool]], positives: int) -> float:
    """DISC21 µAP: every (query, reference, score) pooled, sorted by score, AP over true pairs."""
    if positives == 0:
        return 0.0
    ordered = sorted(predictions, key=lambda p: -p[0])
    hits, total = 0, 0.0
    for rank, (_, positive) in enumerate(ordered, start=1):
        if positive:
            hits += 1
            total += hits / rank
    return total / positives


@dataclass
class Result:
    transform: str
    source: int
    ranked: list[tuple[int, float]]  # (reference index, score), best first


def summarise(name: str, results: list[Result], seconds: float) -> dict[str, float]:
    rows: dict[str, float] = {}
    groups = {t: [r for r in results if r.transform == t] for t in TRANSFORMS} | {"all": results}
    print(f"\n{name}  ({len(results) / seconds:.1f} queries/s)")
    print(f"  {'transform':<10} {'µAP':>6} {'R@1':>6}  n")
    for group, items in groups.items():
        predictions = [(score, ref == r.source) for r in items for ref, score in r.ranked[:TOP_K]]
        ap = micro_ap(predictions, len(items))
        r1 = float(np.mean([bool(r.ranked) and r.ranked[0][0] == r.source for r in items]))
        rows[group] = ap
        rows[f"{group}_r1"] = r1
        print(f"  {group:<10} {ap:6.3f} {r1:6.3f}  {len(items)}")
    rows["qps"] = len(results) / seconds
    return rows


# ------------------------------------------------------------------------------------ methods
def phash(rgb: np.ndarray) -> np.ndarray:
    """imagededup's PHash: grey 32x32 (Lanczos), 2-D DCT, 8x8 block, bits above the median of AC."""
    from scipy.fft import dctn

    grey = np.asarray(Image.fromarray(rgb).convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float32)
    block = dctn(grey, norm="ortho")[:8, :8]
    return (block >= np.median(block.ravel()[1:])).ravel()


def run_phash(references: list[np.ndarray], queries: list[Query]) -> tuple[list[Result], float]:
    ref_bits = np.stack([phash(r) for r in references])
    start = time.perf_counter()
    results = []
    for q in queries:
        distance = (ref_bits != phash(q.image)[None, :]).sum(axis=1)
        score = 1 - distance / 64.0
        order = np.argsort(-score, kind="stable")[:TOP_K]
        results.append(Result(q.transform, q.source, [(int(i), float(score[i])) for i in order]))
    return results, time.perf_counter() - start


def run_offline(references: list[np.ndarray], queries: list[Query]) -> tuple[list[Result], float]:
    """Through the service's own engine (SQLite store, FAISS indexes, shortlist + verification)."""
    import tempfile

    from services.ndd.core.config import NddSettings
    from services.ndd.engine import Engine, ImageQuery

    with tempfile.TemporaryDirectory(prefix="ndd-bench-") as data_dir:
        engine = Engine(Path(data_dir), NddSettings())
        start = time.perf_counter()
        for number, reference in enumerate(references):
            engine.add_image("default", str(number), reference, None, {})
        engine.persist("default")
        print(f"  offline: indexed {len(references)} references in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        results = []
        for q in queries:
            prepared = offline.prepare_query(q.image)
            query = ImageQuery(offline.NAME, prepared.vectors, prepared)
            matches = engine.search_images("default", query, 0.0, TOP_K)
            results.append(Result(q.transform, q.source, [(int(m.item.item_id), m.score) for m in matches]))
        elapsed = time.perf_counter() - start
        engine.close()
    return results, elapsed


def run_deep(url: str, references: list[np.ndarray], queries: list[Query]) -> tuple[list[Result], float]:
    from services.ndd.descriptors.deep import AnnotationEmbedder

    embedder = AnnotationEmbedder(url)

    def encode(rgb: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "PNG")
        return buffer.getvalue()

    async def embed_all(images: list[np.ndarray]) -> np.ndarray:
        return np.stack([(await embedder.embed(encode(i))).vector for i in images])

    ref = asyncio.run(embed_all(references))
    start = time.perf_counter()
    qv = asyncio.run(embed_all([q.image for q in queries]))
    sims = qv @ ref.T
    results = []
    for q, row in zip(queries, sims, strict=True):
        order = np.argsort(-row)[:TOP_K]
        results.append(Result(q.transform, q.source, [(int(i), calibrate("deep", float(row[i]))) for i in order]))
    return results, time.perf_counter() - start


# ----------------------------------------------------------------------------------- videos
def _pan_frame(photo: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
    height, width = photo.shape[:2]
    crop_h, crop_w = int(height * 0.8), int(width * 0.8)
    y, x = int((height - crop_h) * t), int((width - crop_w) * (1 - t))
    return np.asarray(Image.fromarray(np.ascontiguousarray(photo[y : y + crop_h, x : x + crop_w])).resize(size))


def make_video(shots: list[np.ndarray], shot_s: float, fps: int, size: tuple[int, int], start: float = 0.0,
               end: float | None = None) -> bytes:
    """An H.264 MP4 of slow pans over photos, one shot each; only [start, end) seconds are written."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        frames_per_shot = int(shot_s * fps)
        for number, photo in enumerate(shots):
            for i in range(frames_per_shot):
                now = number * shot_s + i / fps
                if now + 1e-9 < start or (end is not None and now + 1e-9 >= end):
                    continue
                rgb = _pan_frame(photo, i / max(1, frames_per_shot - 1), size)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


VIDEO_QUERY_TYPES = ("clip", "pip")


def video_benchmark(photos: list[np.ndarray], tiles: list[np.ndarray], quick: bool, rng: np.random.Generator
                    ) -> None:
    """Video queries against references + distractor videos, per query type: "clip" (a cut out of a
    reference, re-encoded smaller) and "pip" (that cut scaled into a 16:9 frame over another video or
    a slide); "pip" negatives put unindexed content in the same kind of frame. The frame descriptor
    (chamfer + alignment) against per-frame pHash (chamfer) as baseline."""
    from services.ndd import video as ndd_video

    # References use disjoint photos (so no two share a shot); distractors use only tiles and textures,
    # PiP backgrounds and negatives tiles that no indexed video uses.
    n_distractors, per_reference = (10, 2) if quick else (40, 4)
    order = rng.permutation(len(photos))
    n_refs = len(photos) // 3
    indexed_tiles, spare_tiles = tiles[: len(tiles) * 3 // 4], tiles[len(tiles) * 3 // 4 :]
    references = [make_video([photos[int(i)] for i in order[3 * r : 3 * r + 3]], 3.0, 8, (160, 120))
                  for r in range(n_refs)]
    for _ in range(n_distractors):
        picks = [indexed_tiles[int(i)] for i in rng.choice(len(indexed_tiles), 3, replace=False)]
        references.append(make_video(picks, 3.0, 8, (160, 120)))
    unindexed = [make_video([spare_tiles[int(i)] for i in rng.choice(len(spare_tiles), 3, replace=False)],
                            3.0, 8, (160, 120)) for _ in range(4)]
    queries: list[tuple[str, int | None, float, bytes]] = []  # (type, reference number or None, true offset, bytes)
    for number in range(n_refs):
        for _ in range(per_reference):
            start = float(rng.uniform(0.5, 4.5))
            queries.append(("clip", number, start, _cut(references[number], start, start + 4.0)))
            start = float(rng.uniform(0.5, 4.5))
            inner = _video_frames(references[number], 0.1, start, start + 4.0)
            queries.append(("pip", number, start, _pip(inner, _pip_background(unindexed, rng), rng)))
    for number in range(n_refs * per_reference):
        inner = _video_frames(unindexed[number % len(unindexed)], 0.1, float(rng.uniform(0.5, 4.5)))[:40]
        queries.append(("pip", None, 0.0, _pip(inner, _pip_background(unindexed, rng), rng)))
    started = time.perf_counter()
    ref_features = [ndd_video.extract(v) for v in references]
    ref_hashes = [_frame_hashes(v) for v in references]
    n_pip = sum(1 for kind, number, _, _ in queries if kind == "pip" and number is not None)
    print(f"\nvideos: {len(references)} indexed ({n_refs} references + {n_distractors} distractors), "
          f"described in {time.perf_counter() - started:.1f} s; queries: "
          f"{sum(1 for q in queries if q[0] == 'clip')} clip (4 s, re-encoded at 96x72 / 10 fps), "
          f"{n_pip} pip (the 4 s cut at 30-60 % of a 256x144 frame over an unindexed video or a slide, "
          f"half with a border, half with a caption), {len(queries) - 2 * n_pip} pip negatives "
          f"(unindexed content in the same frames; pip µAP pools their false scores)")
    for name in ("pHash frames (chamfer)", "offline frames (chamfer + alignment)"):
        predictions: dict[str, list[tuple[float, bool]]] = {kind: [] for kind in VIDEO_QUERY_TYPES}
        hits = dict.fromkeys(VIDEO_QUERY_TYPES, 0)
        offset_errors: dict[str, list[float]] = {kind: [] for kind in VIDEO_QUERY_TYPES}
        negative_best: list[float] = []
        started = time.perf_counter()
        for kind, number, start, clip in queries:
            if name.startswith("pHash"):
                hashes = _frame_hashes(clip)
                scores = [float(np.mean([max(1 - (h != r).sum() / 64 for r in ref) for h in hashes]))
                          for ref in ref_hashes]
                segments = [[] for _ in references]
            else:
                query = ndd_video.extract(clip)
                compared = [ndd_video.compare(query, ref) for ref in ref_features]
                scores = [c[0] for c in compared]
                segments = [c[1] for c in compared]
            ranked = np.argsort(scores)[::-1][:TOP_K]
            predictions[kind] += [(scores[i], i == number) for i in ranked]
            if number is None:
                negative_best.append(float(scores[ranked[0]]))
                continue
            hits[kind] += int(ranked[0] == number)
            if segments[number]:
                seg = segments[number][0]
                offset_errors[kind].append(abs((seg.reference_start - seg.query_start) - start))
        elapsed = time.perf_counter() - started
        print(f"  {name}  ({len(queries) / elapsed:.1f} queries/s)")
        for kind in VIDEO_QUERY_TYPES:
            positives = sum(1 for k, number, _, _ in queries if k == kind and number is not None)
            line = (f"    {kind:<5} µAP {micro_ap(predictions[kind], positives):.3f}  "
                    f"R@1 {hits[kind] / positives:.3f}  n {positives}")
            if offset_errors[kind]:
                errors = offset_errors[kind]
                line += (f"  segments {len(errors)}/{positives}, offset error median {np.median(errors):.2f} s, "
                         f"max {max(errors):.2f} s")
            print(line)
        print(f"    pip negatives: best score median {np.median(negative_best):.3f}, max {max(negative_best):.3f}, "
              f"{sum(s >= 0.5 for s in negative_best)}/{len(negative_best)} at or above t_sim 0.5")


def _caption_font() -> ImageFont.ImageFont:
    return _font(12)


def _video_frames(data: bytes, step_s: float, start: float = 0.0, end: float = float("inf")) -> list[np.ndarray]:
    from services.common.media import iter_video_frames

    return [rgb for _, time_s, rgb in iter_video_frames(data, every_seconds=step_s) if start <= time_s < end]


def _pip(inner_frames: list[np.ndarray], background: list[np.ndarray] | np.ndarray, rng: np.random.Generator
         ) -> bytes:
    """A 256x144 (16:9), 10 fps H.264 video of `inner_frames` scaled to 30-60 % of the frame width
    at a random place, over a background video (looped) or a still slide, half of the time with a
    3 px border and half of the time with a caption line; one query shape for a whole video, as a
    picture-in-picture edit keeps its layout."""
    import av

    frame_w, frame_h = 256, 144
    inner_h0, inner_w0 = inner_frames[0].shape[:2]
    width = int(frame_w * rng.uniform(0.30, 0.60))
    height = min(frame_h - 12, round(width * inner_h0 / inner_w0))
    width = round(height * inner_w0 / inner_h0)
    x, y = int(rng.integers(6, frame_w - width - 5)), int(rng.integers(6, frame_h - height - 5))
    border = 3 if rng.random() < 0.5 else 0
    border_colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    caption = "Breaking: live from the studio" if rng.random() < 0.5 else None
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = frame_w, frame_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for number, rgb in enumerate(inner_frames):
            back = background[number % len(background)] if isinstance(background, list) else background
            frame = Image.fromarray(back).convert("RGB").resize((frame_w, frame_h), Image.BILINEAR)
            draw = ImageDraw.Draw(frame)
            if border:
                draw.rectangle((x - border, y - border, x + width + border - 1, y + height + border - 1),
                               fill=border_colour)
            frame.paste(Image.fromarray(rgb).resize((width, height), Image.BILINEAR), (x, y))
            if caption:
                draw.text((8, frame_h - 16 if y > 20 else 4), caption, fill=(255, 255, 255), font=_caption_font())
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _pip_background(videos: list[bytes], rng: np.random.Generator) -> list[np.ndarray] | np.ndarray:
    """Half of the time another video (not indexed), else a still slide: a texture or a flat colour."""
    roll = rng.random()
    if roll < 0.5:
        return _video_frames(videos[int(rng.integers(len(videos)))], 0.1)
    if roll < 0.75:
        return _texture(rng)
    return np.full((144, 256, 3), rng.integers(0, 256, 3), np.uint8)


def _cut(data: bytes, start: float, end: float) -> bytes:
    """Re-encodes [start, end) of a video at 96x72 and 10 fps (a re-uploaded, resized clip)."""
    import av

    from services.common.media import iter_video_frames

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = 96, 72
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "32"}
        for _, time_s, rgb in iter_video_frames(data, every_seconds=0.1):
            if start <= time_s < end:
                small = np.asarray(Image.fromarray(rgb).resize((96, 72), Image.BILINEAR))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _frame_hashes(data: bytes) -> list[np.ndarray]:
    from services.common.media import iter_video_frames

    return [phash(rgb) for _, _, rgb in iter_video_frames(data, every_seconds=1.0)]


# ------------------------------------------------------------------------------- scale run
def scale_sources() -> list[np.ndarray]:
    """Photos the distractors are made from: none of them is a reference (so no distractor is a true
    copy of a query's photo), plus face photos."""
    import skimage.data as data

    names = ("brick", "grass", "gravel", "cell", "horse", "logo", "colorwheel", "binary_blobs", "checkerboard",
             "shepp_logan_phantom")
    sources = []
    for name in names:
        try:
            sources.append(_rgb(getattr(data, name)()))
        except Exception:  # an image this skimage version lacks
            continue
    sources += [_rgb(np.asarray(Image.fromarray(_rgb(f)).resize((160, 160)))) for f in data.lfw_subset()[:100]]
    return sources


def scale_distractor(sources: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A crop, tile, colour change, rotation or flip of a source photo, or a noise image."""
    roll = rng.random()
    if roll < 0.2:
        return _texture(rng)
    photo = Image.fromarray(sources[int(rng.integers(len(sources)))])
    if roll < 0.4:
        return _tile(np.asarray(photo), rng)
    edit = (t_crop, t_colour, t_rotate, t_flip, t_resize)[int(rng.integers(5))]
    return np.asarray(edit(photo, rng).convert("RGB"))


def scale_run(sizes: list[int], per_photo: int, rng: np.random.Generator) -> None:
    """Grows one collection to each size in turn; at each: index throughput of the images added, and
    µAP/R@1 per transformation plus query latency p50/p95, offline (the service's engine) beside pHash."""
    import tempfile

    from services.ndd.core.config import NddSettings
    from services.ndd.engine import Engine, ImageQuery

    photos = list(reference_photos().values())
    sources = scale_sources()
    queries = make_queries(photos, per_photo, rng)
    print(f"scale run: {len(photos)} reference photos, distractors from {len(sources)} other photos and noise; "
          f"{len(queries)} queries ({len(TRANSFORMS)} transformations)")
    with tempfile.TemporaryDirectory(prefix="ndd-scale-") as data_dir:
        engine = Engine(Path(data_dir), NddSettings())
        hashes: list[np.ndarray] = []
        pending: list[np.ndarray] = list(photos)
        total = 0
        for size in sizes:
            while total + len(pending) < size + len(photos):
                pending.append(scale_distractor(sources, rng))
            started = time.perf_counter()
            for image in pending:
                engine.add_image("default", str(total), image, None, {})
                total += 1
            engine.persist("default")
            ndd_rate = len(pending) / (time.perf_counter() - started)
            started = time.perf_counter()
            hashes += [phash(image) for image in pending]
            phash_rate = len(pending) / (time.perf_counter() - started)
            pending = []
            bits = np.stack(hashes)
            for name in ("pHash", "offline"):
                results, latencies = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    if name == "pHash":
                        score = 1 - (bits != phash(q.image)[None, :]).sum(axis=1) / 64.0
                        order = np.argsort(-score, kind="stable")[:TOP_K]
                        ranked = [(int(i), float(score[i])) for i in order]
                    else:
                        prepared = offline.prepare_query(q.image)
                        matches = engine.search_images("default", ImageQuery(offline.NAME, prepared.vectors,
                                                                             prepared), 0.0, TOP_K)
                        ranked = [(int(m.item.item_id), m.score) for m in matches]
                    latencies.append(time.perf_counter() - t0)
                    results.append(Result(q.transform, q.source, ranked))
                ms = np.asarray(latencies) * 1000
                rate = phash_rate if name == "pHash" else ndd_rate
                line = f"N={total:>7} {name:<8} index {rate:8.1f} img/s  query p50 {np.percentile(ms, 50):7.1f} ms"
                line += f"  p95 {np.percentile(ms, 95):7.1f} ms"
                for group in [*TRANSFORMS, "all"]:
                    items = results if group == "all" else [r for r in results if r.transform == group]
                    predictions = [(sc, ref == r.source) for r in items for ref, sc in r.ranked[:TOP_K]]
                    r1 = np.mean([bool(r.ranked) and r.ranked[0][0] == r.source for r in items])
                    line += f"  {group} {micro_ap(predictions, len(items)):.3f}/{r1:.2f}"
                print(line, flush=True)
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 query per photo and transformation, 1000 distractors")
    parser.add_argument("--distractors", type=int, default=None)
    parser.add_argument("--deep-url", default=None, help="annotation service host:port for the deep descriptor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-video", action="store_true", help="skip the video benchmark")
    parser.add_argument("--video-only", action="store_true", help="only the video benchmark (clip and pip queries)")
    parser.add_argument("--scale", default=None, help="scale run at these collection sizes, e.g. 1000,10000,100000 "
                        "(µAP/R@1 per transformation, index img/s, query p50/p95; offline beside pHash)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.scale:
        scale_run([int(n) for n in args.scale.split(",")], 1 if args.quick else 2, rng)
        return

    photos = reference_photos()
    photo_list = list(photos.values())
    if args.video_only:
        video_benchmark(photo_list, distractors(photos, 200, rng), args.quick, rng)
        return
    count = args.distractors or (1000 if args.quick else 3000)
    references = photo_list + distractors(photos, count, rng)
    queries = make_queries(photo_list, 1 if args.quick else 3, rng)
    print(f"{len(photo_list)} photos + {count} distractors indexed; {len(queries)} queries "
          f"({len(TRANSFORMS)} transformations)")

    table = {"pHash (imagededup)": summarise("pHash (imagededup)", *run_phash(references, queries))}
    table["offline"] = summarise("offline", *run_offline(references, queries))
    if args.deep_url:
        try:
            table["deep"] = summarise("deep (annotation service)", *run_deep(args.deep_url, references, queries))
        except Exception as exc:
            print(f"\ndeep: unavailable: {exc}")
    else:
        print("\ndeep: skipped (pass --deep-url HOST:PORT of an annotation service with an embedding model)")

    if not args.no_video:
        tiles = references[len(photo_list) : len(photo_list) + 200]
        video_benchmark(photo_list, tiles, args.quick, rng)

    base, ours = table["pHash (imagededup)"], table["offline"]
    print("\nmarkdown table (µAP / recall@1):")
    names = list(table)
    print("| transformation | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for group in [*TRANSFORMS, "all"]:
        cells = [f"{table[n][group]:.3f} / {table[n][group + '_r1']:.3f}" for n in names]
        print(f"| {group} | " + " | ".join(cells) + " |")
    print("| queries/s | " + " | ".join(f"{table[n]['qps']:.0f}" for n in names) + " |")
    overall = ours["all"] >= 0.95
    print(f"goal offline µAP >= 0.95: {'MET' if overall else 'NOT MET'} ({ours['all']:.3f})")
    for group in ("crop", "overlay"):
        ratio = ours[group] / max(base[group], 1e-9)
        ceiling = 1.0 / max(base[group], 1e-9)  # µAP cannot exceed 1
        verdict = "MET" if ratio >= 1.5 else ("AT CEILING (pHash too strong here for 1.5x)"
                                             if ours[group] >= 0.999 else "NOT MET")
        print(f"goal offline >= 1.5x pHash µAP on {group}: {verdict} ({ratio:.2f}x, ceiling {ceiling:.2f}x)")


if __name__ == "__main__":
    main()
