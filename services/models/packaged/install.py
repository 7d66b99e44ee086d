"""fetch -> convert -> verify -> write, for every model of `catalog.PACKAGED`.

The converted, verified graph is cached under `<cache>/converted/<name>-<key>/` (the key covers the
package pin, the source bytes, the conversion recipe and the toolchain pins), so a second install,
or a reinstall into another repository, only copies. A model whose converted output differs from the
source framework's on the same real photo by more than its tolerance is never written. Every failure
is a ModelsError with one line saying why, and leaves the repository as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from services.common.model_repository import SIDECAR_FILE
from services.models.errors import ModelsError
from services.models.onnx_io import graph_io
from services.models.packaged import convert, reference, tfjs, toolchain
from services.models.packaged.catalog import PACKAGED, PackagedModel
from services.models.packaged.sources import fetch
from services.models.triton_config import build_config
from services.models.writer import staged_model_dir, write_config, write_sidecar, write_weights

log = logging.getLogger(__name__)

# Bumped when the conversion or post-processing changes what is written for the same source.
RECIPE_VERSION = "1"
MAX_BATCH = 8


@dataclass(frozen=True)
class Verification:
    reference: str  # what produced the expected outputs
    max_abs_diff: dict[str, float]  # per installed output name
    max_abs_value: dict[str, float]
    tolerance: float
    fixes: tuple[str, ...]  # topology fixes applied before conversion

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "input": "scikit-image astronaut, prepared as the model expects",
                "max_abs_diff": self.max_abs_diff, "max_abs_value": self.max_abs_value,
                "tolerance": self.tolerance, "topology_fixes": list(self.fixes)}

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)

    def check(self, name: str, tolerance: float) -> None:
        """Raises unless every output is within `tolerance` x max(1, its largest magnitude)."""
        for output, diff in self.max_abs_diff.items():
            bound = tolerance * max(1.0, self.max_abs_value[output])
            if not diff <= bound:
                raise ModelsError(f"{name}: the converted graph's {output} differs from {self.reference} by "
                                  f"{diff:.3g} (allowed {bound:.3g}); not installed")


@dataclass(frozen=True)
class Converted:
    onnx_path: Path
    verification: Verification
    key: str
    batched: bool
    cached: bool = False


def _source_files(model: PackagedModel, root: Path) -> list[Path]:
    source = root / model.path
    if model.kind == "tfjs":
        data = json.loads(source.read_text(encoding="utf-8"))
        return [source, *(source.parent / p for p in tfjs.weight_files(data))]
    if model.kind == "nsfwjs":
        return sorted(p for p in source.iterdir() if p.is_file())
    return [source]


def conversion_key(model: PackagedModel, root: Path) -> str:
    digest = hashlib.sha256()
    recipe = [RECIPE_VERSION, model.package.pin, model.path, model.kind, json.dumps(model.inputs),
              json.dumps(model.outputs), *model.extra_outputs, *toolchain.CONVERTER_REQUIREMENTS,
              *toolchain.TFJS_PACKAGES]
    digest.update("\n".join(recipe).encode())
    for path in _source_files(model, root):
        if not path.is_file():
            raise ModelsError(f"{model.package.pin} has no {path.relative_to(root)}")
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prune_outputs(graph_model: onnx.ModelProto, keep: list[str]) -> onnx.ModelProto:
    """Keeps only the graph outputs named in `keep` (in that order) and the nodes they need."""
    graph = graph_model.graph
    by_name = {o.name: o for o in graph.output}
    missing = [k for k in keep if k not in by_name]
    if missing:
        raise ModelsError(f"the converted graph has no output {missing}; it has {sorted(by_name)}")
    outputs = [by_name[k] for k in keep]
    del graph.output[:]
    graph.output.extend(outputs)
    needed = set(keep)
    kept_nodes = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept_nodes.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept_nodes))
    used = {i for n in graph.node for i in n.input}
    initializers = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return graph_model


def _convert_source(model: PackagedModel, root: Path, cache: Path, work: Path) -> tuple[Path, Path | None, list[str]]:
    """(raw ONNX, the source model the reference runs, topology fixes)."""
    source = root / model.path
    raw = work / "raw.onnx"
    if model.kind == "onnx":
        graph_model = onnx.load(str(source))
        present = {o.name for o in graph_model.graph.output}
        for name in model.extra_outputs:  # an inner layer (a feature vector) made a graph output
            if name not in present:
                graph_model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        onnx.save(graph_model, str(raw))
        return raw, None, []
    python = toolchain.converter_python(cache)
    if model.kind == "tflite":
        convert.tf2onnx(python, source, raw, kind="tflite")
        return raw, source, []
    if model.kind == "nsfwjs":
        source = tfjs.materialize_js_model(source, work / "js-model", toolchain.node())
    elif model.kind != "tfjs":
        raise ModelsError(f"{model.name}: unknown source kind {model.kind!r}")
    fixed, fixes = tfjs.prepare(source, work / "tfjs")
    convert.tf2onnx(python, fixed, raw, kind="tfjs", outputs=model.extra_outputs and
                    tuple(dict.fromkeys([*_signature_outputs(fixed), *model.extra_outputs])))
    return raw, fixed, fixes


def _signature_outputs(model_json: Path) -> list[str]:
    data = json.loads(model_json.read_text(encoding="utf-8"))
    signature = data.get("signature") or data.get("userDefinedMetadata", {}).get("signature") or {}
    return [v["name"] for v in signature.get("outputs", {}).values()]


def _reference(
    model: PackagedModel, source: Path, cache: Path, sample: np.ndarray, raw: Path
) -> tuple[list[np.ndarray], str]:
    source_names = list(model.outputs)
    input_name = next(iter(model.inputs))
    if model.kind in ("tfjs", "nsfwjs"):
        modules = toolchain.tfjs_modules(cache)
        outs = reference.run_tfjs(toolchain.node(), modules, source, {input_name: sample}, source_names)
        return outs, f"TensorFlow.js {toolchain.TFJS_PACKAGES[0].rsplit('@', 1)[1]} (pure-JS CPU backend)"
    if model.kind == "tflite":
        got = reference.run_tflite(toolchain.converter_python(cache), source, {input_name: sample})
        missing = [n for n in source_names if n not in got]
        if missing:
            raise ModelsError(f"{model.name}: TFLite gave no output {missing}; it gave {sorted(got)}")
        pins = dict(r.split("==") for r in toolchain.CONVERTER_REQUIREMENTS)
        return [got[n] for n in source_names], f"TensorFlow Lite interpreter (tensorflow-cpu {pins['tensorflow-cpu']})"
    session = ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"])
    return session.run(source_names, {input_name: sample}), "the package's own ONNX graph (ONNX Runtime)"


def _declare_shapes(graph_model: onnx.ModelProto, raw: Path, feeds: dict[str, np.ndarray]) -> None:
    """Outputs declared without a shape (an inner layer made an output) get the shape a run gives."""
    bare = [o for o in graph_model.graph.output if not o.type.tensor_type.shape.dim]
    if not bare:
        return
    session = ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"])
    for value, array in zip(bare, session.run([o.name for o in bare], feeds), strict=True):
        for size in array.shape:
            value.type.tensor_type.shape.dim.add().dim_value = int(size)


def _postprocess(model: PackagedModel, raw: Path, work: Path, sample: np.ndarray) -> tuple[Path, bool]:
    graph_model = onnx.load(str(raw))
    _declare_shapes(graph_model, raw, {next(iter(model.inputs)): sample})
    prune_outputs(graph_model, list(model.outputs))
    convert.rename_io(graph_model, {**model.inputs, **model.outputs})
    fixed = work / "fixed.onnx"
    onnx.save(graph_model, str(fixed))
    batched = work / "batched.onnx"
    onnx.save(convert.free_batch(graph_model), str(batched))
    feeds = {next(iter(model.inputs.values())): sample}
    if convert.batches(batched, feeds, 3):
        return batched, True
    return fixed, False


def _verify(model: PackagedModel, final: Path, expected: list[np.ndarray], how: str, fixes: list[str],
            sample: np.ndarray) -> Verification:
    session = ort.InferenceSession(str(final), providers=["CPUExecutionProvider"])
    got = session.run(list(model.outputs.values()), {next(iter(model.inputs.values())): sample})
    diffs, scales = {}, {}
    for name, want, have in zip(model.outputs.values(), expected, got, strict=True):
        if np.shape(want) != np.shape(have):
            raise ModelsError(f"{model.name}: output {name} is {list(np.shape(have))} after conversion, "
                              f"{list(np.shape(want))} in the source framework")
        diffs[name] = float(np.max(np.abs(np.asarray(want, np.float64) - np.asarray(have, np.float64)), initial=0.0))
        scales[name] = float(np.max(np.abs(want), initial=0.0))
    verification = Verification(how, diffs, scales, model.tolerance, tuple(fixes))
    verification.check(model.name, model.tolerance)
    return verification


def converted(model: PackagedModel, cache: Path) -> Converted:
    """The verified ONNX graph of `model`, from the cache or made now."""
    root = fetch(model.package, cache)
    key = conversion_key(model, root)
    target = Path(cache) / "converted" / f"{model.name}-{key}"
    record = target / "verification.json"
    if record.is_file() and (target / "model.onnx").is_file():
        data = json.loads(record.read_text(encoding="utf-8"))
        v = Verification(data["reference"], data["max_abs_diff"], data["max_abs_value"], model.tolerance,
                         tuple(data["topology_fixes"]))
        v.check(model.name, model.tolerance)  # a tightened tolerance applies to cached graphs too
        return Converted(target / "model.onnx", v, key, bool(data["batched"]), cached=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{model.name}-", dir=target.parent) as tmp:
        work = Path(tmp)
        sample = model.sample()
        raw, source, fixes = _convert_source(model, root, cache, work)
        expected, how = _reference(model, source or raw, cache, sample, raw)
        final, batched = _postprocess(model, raw, work, sample)
        verification = _verify(model, final, expected, how, fixes, sample)
        staging = work / "out"
        staging.mkdir()
        shutil.copyfile(final, staging / "model.onnx")
        (staging / "verification.json").write_text(
            json.dumps({**verification.to_json(), "batched": batched}, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return Converted(target / "model.onnx", verification, key, batched)


def write(repository: Path, model: PackagedModel, done: Converted) -> None:
    io = graph_io(done.onnx_path)
    inputs, outputs = io.triton_tensors(done.batched)
    config = build_config(model.name, inputs, outputs, max_batch_size=MAX_BATCH if done.batched else 0,
                          dynamic_batching=done.batched and all(-1 not in t.dims for t in inputs))
    params = dict(model.meta.params)
    params["package"] = {**params["package"], "conversion_key": done.key, "recipe": RECIPE_VERSION}
    params["verification"] = done.verification.to_json()
    meta = replace(model.meta, params=params)
    with staged_model_dir(repository, model.name) as model_dir:
        write_weights(model_dir, done.onnx_path)
        write_config(model_dir, config)
        write_sidecar(model_dir, meta)


def is_current(repository: Path, model: PackagedModel, cache: Path) -> bool:
    """Installed from the same package pin and recipe (a warm `make test` / `make up` keeps it)."""
    sidecar = Path(repository) / model.name / SIDECAR_FILE
    weights = Path(repository) / model.name / "1" / "model.onnx"
    if not sidecar.is_file() or not weights.is_file():
        return False
    try:
        params = json.loads(sidecar.read_text(encoding="utf-8")).get("params", {})
    except ValueError:
        return False
    package = params.get("package", {})
    # A catalog param changed since (a threshold, a note): rewritten from the conversion cache, which is cheap.
    same_params = all(params.get(key) == value for key, value in model.meta.params.items() if key != "package")
    return same_params and (package.get("name"), package.get("version"), package.get("recipe")) == (
        model.package.name, model.package.version, RECIPE_VERSION)


def install_packaged(
    repository: Path, cache: Path, *, force: bool = False, names: tuple[str, ...] = (),
    report: Callable[[str], None] = print,
) -> tuple[list[str], list[str], dict[str, str]]:
    """(installed, kept, failed name -> one-line reason). One model's failure does not stop the others."""
    installed, kept, failed = [], [], {}
    for model in PACKAGED:
        if names and model.name not in names:
            continue
        if not force and is_current(repository, model, cache):
            kept.append(model.name)
            continue
        started = time.perf_counter()
        try:
            done = converted(model, cache)
            write(repository, model, done)
        except ModelsError as exc:
            failed[model.name] = str(exc)
            continue
        installed.append(model.name)
        how = "from the conversion cache" if done.cached else "converted now"
        report(f"verified {model.name}: max |onnx - source| = {done.verification.worst:.2e} against "
               f"{done.verification.reference} ({how}, {time.perf_counter() - started:.1f} s)")
    return installed, kept, failed
