"""TFJS model files made readable by tf2onnx.

Two fixes to the topology (model.json), both explicit and tested, because the packaged graphs were
written by older TensorFlow.js converters than the op definitions of any TensorFlow that tf2onnx 1.16
runs with (checked with TensorFlow 2.15 and 2.21):
- `_FusedConv2D` nodes lack `TArgs`, the list of the fused arguments' types: it is `num_args` times `T`;
- `TopKV2` nodes lack `index_type`: TFJS graphs index with int32, the op's original type.
Nothing else in the graph changes: the weights are the package's bytes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from services.models.errors import ModelsError

JS_DIR = Path(__file__).with_name("js")


def fix_topology(model: dict[str, Any]) -> list[str]:
    """Adds the missing attributes in place; returns what was added, one line per kind."""
    fixed: dict[str, int] = {}
    for node in model.get("modelTopology", {}).get("node", []):
        attr = node.setdefault("attr", {})
        if node.get("op") == "_FusedConv2D" and "TArgs" not in attr:
            count = int(attr.get("num_args", {}).get("i", 0))
            dtype = attr.get("T", {}).get("type", "DT_FLOAT")
            attr["TArgs"] = {"list": {"type": [dtype] * count}}
            fixed["_FusedConv2D.TArgs"] = fixed.get("_FusedConv2D.TArgs", 0) + 1
        elif node.get("op") == "TopKV2" and "index_type" not in attr:
            attr["index_type"] = {"type": "DT_INT32"}
            fixed["TopKV2.index_type"] = fixed.get("TopKV2.index_type", 0) + 1
    return [f"{what} on {count} node(s)" for what, count in fixed.items()]


def weight_files(model: dict[str, Any]) -> list[str]:
    return [p for group in model.get("weightsManifest", []) for p in group.get("paths", [])]


def prepare(model_json: Path, target: Path) -> tuple[Path, list[str]]:
    """A copy of the model (fixed model.json, weight files linked) in `target`; returns its model.json."""
    try:
        model = json.loads(Path(model_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelsError(f"{model_json}: not a readable TFJS model.json: {exc}") from exc
    fixes = fix_topology(model)
    target.mkdir(parents=True, exist_ok=True)
    for name in weight_files(model):
        source = Path(model_json).parent / name
        if not source.is_file():
            raise ModelsError(f"{model_json}: weight file {name} is missing")
        link = target / name
        if not link.exists():
            link.symlink_to(source.resolve())
    out = target / "model.json"
    out.write_text(json.dumps(model), encoding="utf-8")
    return out, fixes


def materialize_js_model(source_dir: Path, target: Path, node: str) -> Path:
    """nsfwjs's JS-module model as plain model.json + shards (see js/materialize.js)."""
    done = subprocess.run([node, str(JS_DIR / "materialize.js"), str(source_dir), str(target)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        raise ModelsError(f"reading the JS-module model in {source_dir}: {lines[-1] if lines else done.returncode}")
    return target / "model.json"
