"""`maam models bench NAME [--vs OTHER]`: latency, size on disk and output agreement of two models
on the same inputs (real photos for image models), measured now and reported, never assumed."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from services.common.model_repository import ModelRepository, ModelSpec
from services.models.errors import ModelsError
from services.models.samples import image_batches, is_image_model, photos, token_batches

CLASS_TASKS = {"classification", "ocr_direction", "nsfw_classification"}


@dataclass(frozen=True)
class BenchResult:
    name: str
    size_bytes: int
    latency_ms: float  # median per batch
    outputs: list[list[np.ndarray]]  # per input batch, per output


@dataclass(frozen=True)
class Agreement:
    kind: str  # "top-1" or "cosine"
    value: float
    max_abs_diff: float


def _session(spec: ModelSpec, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(spec.weights_path), sess_options=options, providers=["CPUExecutionProvider"])


def inputs_for(spec: ModelSpec, count: int, batch: int) -> list[dict[str, np.ndarray]]:
    if is_image_model(spec):
        images = photos(None)
        images = (images * (count // max(len(images), 1) + 1))[: count * batch]
        return list(image_batches(spec, images, batch=batch))
    return list(token_batches(spec, count, batch=batch))


def run(spec: ModelSpec, feeds: list[dict[str, np.ndarray]], repeats: int, threads: int = 0) -> BenchResult:
    session = _session(spec, threads)
    session.run(None, feeds[0])  # warm-up: first-run allocations are not latency
    outputs = [session.run(None, f) for f in feeds]
    times = []
    for _ in range(repeats):
        for f in feeds:
            start = time.perf_counter()
            session.run(None, f)
            times.append((time.perf_counter() - start) * 1000)
    return BenchResult(spec.name, spec.weights_path.stat().st_size, statistics.median(times), outputs)


def agreement(spec: ModelSpec, a: BenchResult, b: BenchResult) -> Agreement:
    """Top-1 agreement for classifiers, else mean cosine similarity of the first output per sample."""
    firsts_a = np.concatenate([o[0].reshape(o[0].shape[0], -1) for o in a.outputs])
    firsts_b = np.concatenate([o[0].reshape(o[0].shape[0], -1) for o in b.outputs])
    if firsts_a.shape != firsts_b.shape:
        raise ModelsError(f"{a.name} and {b.name} give outputs of different shapes; they cannot be compared")
    diff = float(np.max(np.abs(firsts_a.astype(np.float64) - firsts_b)))
    if spec.meta.task in CLASS_TASKS or (spec.meta.labels and firsts_a.shape[1] == len(spec.meta.labels)):
        return Agreement("top-1", float(np.mean(firsts_a.argmax(1) == firsts_b.argmax(1))), diff)
    norms = np.linalg.norm(firsts_a, axis=1) * np.linalg.norm(firsts_b, axis=1)
    cosine = np.sum(firsts_a * firsts_b, axis=1) / np.maximum(norms, 1e-12)
    return Agreement("cosine", float(np.mean(cosine)), diff)


def agreements(spec: ModelSpec, a: BenchResult, b: BenchResult) -> list[Agreement]:
    """`agreement`, plus for YOLOv8-layout detectors the class of each image's best box."""
    found = [agreement(spec, a, b)]
    if spec.meta.params.get("format") == "yolov8":
        # Boxes dominate the raw output; what a user sees is which class is detected where one is.
        scores_a = np.concatenate([o[0] for o in a.outputs])[:, 4:, :]
        scores_b = np.concatenate([o[0] for o in b.outputs])[:, 4:, :]
        threshold = float(spec.meta.params.get("score_threshold", 0.25))
        detected = scores_a.max(axis=(1, 2)) >= threshold
        score_diff = float(np.max(np.abs(scores_a - scores_b)))
        if detected.any():
            same = scores_a.max(axis=2).argmax(axis=1) == scores_b.max(axis=2).argmax(axis=1)
            found.append(Agreement(
                f"class of the best box, {int(detected.sum())} inputs with a detection >= {threshold:g}",
                float(np.mean(same[detected])), score_diff,
            ))
        else:
            found.append(Agreement(f"no detection >= {threshold:g}: class scores only", float("nan"), score_diff))
    return found


def bench(
    repository: Path, name: str, vs: str | None = None, *, count: int = 8, batch: int = 1, repeats: int = 5,
    threads: int = 0,
) -> list[str]:
    """Benchmarks NAME (and OTHER on the same inputs); returns the report lines (also printed)."""
    repo = ModelRepository(Path(repository))
    spec = repo.get_installed(name)
    if not spec.triton:
        raise ModelsError(f"{name} runs on {spec.runtime}; bench measures ONNX models")
    feeds = inputs_for(spec, count, batch if spec.max_batch_size > 0 else 1)
    first = run(spec, feeds, repeats, threads)
    lines = [f"{'model':28} {'precision':9} {'size':>10} {'latency/batch':>14}",
             _row(spec, first)]
    if vs:
        other = repo.get_installed(vs)
        if [t.name for t in other.config.input] != [t.name for t in spec.config.input]:
            raise ModelsError(f"{name} and {vs} take different inputs; they cannot be compared")
        second = run(other, feeds, repeats, threads)
        lines.append(_row(other, second))
        samples = sum(len(next(iter(f.values()))) for f in feeds)
        lines += [
            f"size ratio {vs}/{name}: {second.size_bytes / first.size_bytes:.3f}",
            f"latency ratio {vs}/{name}: {second.latency_ms / first.latency_ms:.3f} "
            f"(speed-up x{first.latency_ms / second.latency_ms:.2f})",
        ]
        for agree in agreements(spec, first, second):
            lines.append(
                f"agreement ({agree.kind}) on {samples} inputs: {agree.value:.4f}; "
                f"max abs diff {agree.max_abs_diff:.4g}"
            )
    for line in lines:
        print(line)
    return lines


def _row(spec: ModelSpec, result: BenchResult) -> str:
    return (f"{spec.name:28} {spec.meta.precision:9} {result.size_bytes / 1e6:8.2f} MB "
            f"{result.latency_ms:11.2f} ms")
