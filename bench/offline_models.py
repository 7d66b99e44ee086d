"""The real packaged models on ONNX Runtime: ms per image for each, FP32 and (where `maam models
quantize` applies: NCHW/NHWC RGB image inputs) INT8, with the INT8 output's agreement; and retrieval
on a labelled set built from scikit-image's photos (bench/retrieval_set.py) for the offline visual
embedding, beside a colour-histogram baseline measured in the same run.

The models come from the cache that `maam models install-shipped` fills (MAAM_CACHE_DIR): run that
first. Times are per image at batch 1 on the threads given; the ratio INT8 / FP32 is what transfers.

    python bench/offline_models.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval_set

from services.common.model_repository import ModelRepository, ModelSpec
from services.common.settings import get_settings
from services.models.errors import ModelsError
from services.models.packaged.catalog import PACKAGED
from services.models.packaged.install import install_packaged
from services.models.quantize import int8_name, quantize
from services.models.samples import image_batches, is_image_model, photos


def _session(spec: ModelSpec, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(spec.weights_path), options, providers=["CPUExecutionProvider"])


def _feeds(spec: ModelSpec, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    if is_image_model(spec):
        return list(image_batches(spec, images, batch=1))
    # Models with a face-sized or grey input: their own check sample (a real photo, prepared).
    model = next(m for m in PACKAGED if m.name == spec.name)
    return [{spec.config.input[0].name: model.sample()}]


def _time(session: ort.InferenceSession, feeds: list[dict[str, np.ndarray]], repeats: int) -> tuple[float, list]:
    outputs = [session.run(None, f) for f in feeds]  # warm-up, and the outputs compared
    started = time.perf_counter()
    for _ in range(repeats):
        for f in feeds:
            session.run(None, f)
    return 1000 * (time.perf_counter() - started) / (repeats * len(feeds)), outputs


def _agreement(a: list, b: list) -> float:
    """Mean cosine similarity of the flattened outputs of two runs on the same inputs."""
    sims = []
    for run_a, run_b in zip(a, b, strict=True):
        for x, y in zip(run_a, run_b, strict=True):
            x, y = np.ravel(x).astype(np.float64), np.ravel(y).astype(np.float64)
            sims.append(float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12)))
    return float(np.mean(sims))


def latency(repository: Path, images: list[np.ndarray], threads: int, repeats: int) -> None:
    repo = ModelRepository(repository)
    print(f"{'model':20} {'size MB':>8} {'FP32 ms':>9} {'INT8 ms':>9} {'INT8/FP32':>10} {'agreement':>10}")
    for model in PACKAGED:
        spec = repo.get_installed(model.name)
        feeds = _feeds(spec, images)
        fp32_ms, fp32_out = _time(_session(spec, threads), feeds, repeats)
        size = spec.weights_path.stat().st_size / 1e6
        row = f"{model.name:20} {size:8.1f} {fp32_ms:9.2f}"
        if not is_image_model(spec):
            print(f"{row} {'-':>9} {'-':>10} {'-':>10}  (no RGB image input: quantize does not apply)")
            continue
        try:
            quantize(repository, model.name, None, limit=8)
        except ModelsError as exc:
            print(f"{row} {'-':>9}  quantize failed: {exc}")
            continue
        int8 = ModelRepository(repository).get_installed(int8_name(model.name))
        int8_ms, int8_out = _time(_session(int8, threads), feeds, repeats)
        print(f"{row} {int8_ms:9.2f} {int8_ms / fp32_ms:10.2f} {_agreement(fp32_out, int8_out):10.4f}")


def _embed(spec: ModelSpec, items: list, threads: int) -> np.ndarray:
    session = _session(spec, threads)
    feeds = list(image_batches(spec, [item.image for item in items], batch=1))
    output = spec.config.output[0].name
    return np.concatenate([session.run([output], f)[0].reshape(1, -1) for f in feeds])


def retrieval(repository: Path, threads: int) -> None:
    items = retrieval_set.build()
    instance = [i.group for i in items]
    semantic = [i.semantic for i in items]
    queries = sum(bool(s) for s in semantic)
    print(f"\nretrieval: {len(items)} images ({len(retrieval_set.photos())} photos x "
          f"{1 + len(retrieval_set.ALTERATIONS)} versions); instance groups = a photo and its altered copies "
          f"(stereo views together); semantic: {len(retrieval_set.SEMANTIC)} groups, {queries} queries")
    started = time.perf_counter()
    runs = {"colour histogram (baseline)": np.stack([retrieval_set.colour_histogram(i.image) for i in items])}
    print(f"  colour histogram: {1000 * (time.perf_counter() - started) / len(items):.2f} ms/image")
    repo = ModelRepository(repository)
    for name in ("visual_opennsfw", int8_name("visual_opennsfw")):
        try:
            runs[name] = _embed(repo.get_installed(name), items, threads)
        except Exception as exc:  # the INT8 copy exists only after latency() quantized it
            print(f"  {name}: not measured ({exc})")
    print(f"  {'':30} {'instance mAP':>12} {'R@1':>6} {'semantic mAP':>13} {'R@1':>6}")
    base = None
    for name, vectors in runs.items():
        i_map, i_r1 = retrieval_set.scores(vectors, instance)
        s_map, s_r1 = retrieval_set.scores(vectors, semantic)
        base = base or (i_map, s_map)
        print(f"  {name:30} {i_map:12.3f} {i_r1:6.3f} {s_map:13.3f} {s_r1:6.3f}"
              f"   (mAP vs baseline x{i_map / base[0]:.2f} / x{s_map / base[1]:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few photos and passes (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    images = photos(limit=3 if args.quick else 12)
    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp)
        _, _, failed = install_packaged(repository, Path(get_settings().cache_dir), report=lambda _: None)
        if failed:
            for name, why in failed.items():
                print(f"{name}: not installed: {why}")
            return 1
        latency(repository, images, args.threads, 1 if args.quick else 5)
        retrieval(repository, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
