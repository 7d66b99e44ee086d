"""install-shipped into a temp repository: every entry is a valid Triton model (or a built-in one
Triton never sees), and the NSFW, OCR, face and text models run on real inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from skimage import data

from services.common.model_repository import CONFIG_FILE, ModelRepository, parse_config
from services.models.shipped import NUDENET_NSFW_LABELS
from tests.models.conftest import HAS_TORCH

ONNX_SHIPPED = ("nudenet", "ppocr_det", "ppocr_cls", "ppocr_rec")


def _session(repo: ModelRepository, name: str) -> ort.InferenceSession:
    spec = repo.get_installed(name)
    return ort.InferenceSession(str(spec.weights_path), providers=["CPUExecutionProvider"])


def test_every_shipped_model_is_installed_with_task_and_source(shipped_repository: Path) -> None:
    repo = ModelRepository(shipped_repository)
    assert repo.errors == {}
    tasks = {m.name: m.task for m in repo.installed(include_builtin=True)}
    expected = {
        "nudenet": "nsfw_detection",
        "ppocr_det": "ocr_detection",
        "ppocr_cls": "ocr_direction",
        "ppocr_rec": "ocr_recognition",
        "haar_face": "face_detection",
    }
    if HAS_TORCH:
        expected["minilm_l6_v2"] = "text_embedding"
    assert tasks == expected
    assert {m.meta.source for m in repo.installed(include_builtin=True)} == {"shipped"}
    assert all(m.meta.license for m in repo.installed(include_builtin=True))
    # The inference backends (onnx, triton) never see the OpenCV model.
    assert "haar_face" not in {m.name for m in repo.installed()}
    assert [m.name for m in repo.installed("face_detection", include_builtin=True)] == ["haar_face"]


@pytest.mark.parametrize("name", ONNX_SHIPPED)
def test_config_parses_with_tritons_protobuf_and_matches_the_graph(shipped_repository: Path, name: str) -> None:
    model_dir = shipped_repository / name
    config = parse_config((model_dir / CONFIG_FILE).read_text(), name)
    assert config.name == name and config.platform == "onnxruntime_onnx"
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    graph_inputs = {i.name: i for i in session.get_inputs()}
    for tensor in config.input:
        graph_dims = graph_inputs[tensor.name].shape[1:]  # batch is implicit (max_batch_size > 0)
        assert len(graph_dims) == len(tensor.dims)
        for want, have in zip(tensor.dims, graph_dims, strict=True):
            assert not isinstance(have, int) or have in (want, -1) or want == -1
    assert [o.name for o in config.output] == [o.name for o in session.get_outputs()]
    # Fixed-size inputs are dynamically batched; variable-size ones are not (Triton only batches equal shapes).
    fixed = all(-1 not in t.dims for t in config.input)
    assert config.HasField("dynamic_batching") == fixed


def test_nudenet_sidecar_and_io(shipped_repository: Path) -> None:
    repo = ModelRepository(shipped_repository)
    spec = repo.get_installed("nudenet")
    assert len(spec.meta.labels) == 18 and spec.meta.labels[0] == "FEMALE_GENITALIA_COVERED"
    assert set(spec.meta.params["nsfw_labels"]) == set(NUDENET_NSFW_LABELS) <= set(spec.meta.labels)
    assert spec.meta.params["input_size"] == 320 and spec.meta.params["format"] == "yolov8"
    assert [(t.name, list(t.dims)) for t in spec.config.input] == [("images", [3, 320, 320])]
    assert [(t.name, list(t.dims)) for t in spec.config.output] == [("output0", [22, 2100])]
    assert spec.max_batch_size == 8 and spec.dynamic_batching


def _nudenet_input(image: np.ndarray, size: int = 320) -> np.ndarray:
    """NudeNet's preprocessing: pad bottom/right to a square, resize, /255, NCHW RGB."""
    side = max(image.shape[:2])
    square = np.zeros((side, side, 3), np.uint8)
    square[: image.shape[0], : image.shape[1]] = image
    resized = cv2.resize(square, (size, size))
    return (resized.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def test_nudenet_finds_the_astronauts_face_in_a_real_photo(shipped_repository: Path) -> None:
    repo = ModelRepository(shipped_repository)
    labels = repo.get("nudenet").meta.labels
    batch = np.concatenate([_nudenet_input(data.astronaut()), _nudenet_input(data.chelsea())])
    (out,) = _session(repo, "nudenet").run(None, {"images": batch})
    assert out.shape == (2, 22, 2100)
    scores = out[:, 4:, :].max(axis=2)  # best score per class per image
    astronaut = {labels[i]: float(s) for i, s in enumerate(scores[0])}
    assert max(astronaut, key=astronaut.get) == "FACE_FEMALE"
    assert astronaut["FACE_FEMALE"] > 0.5
    # Neither photo shows anything NSFW.
    nsfw = [labels.index(label) for label in NUDENET_NSFW_LABELS]
    assert scores[:, nsfw].max() < 0.25


def _text_image(text: str) -> np.ndarray:
    image = np.full((96, 480, 3), 255, np.uint8)
    cv2.putText(image, text, (16, 64), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3, cv2.LINE_AA)
    return image


def _normalize(image: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return ((x - np.array(mean, np.float32)) / np.array(std, np.float32)).transpose(2, 0, 1)


def test_ppocr_detects_and_reads_rendered_text(shipped_repository: Path) -> None:
    repo = ModelRepository(shipped_repository)
    det, rec = repo.get_installed("ppocr_det"), repo.get_installed("ppocr_rec")
    image = _text_image("MAAM 2026")

    # Detection: a 32-multiple input; the probability map marks the text region.
    det_in = _normalize(image, det.meta.params["mean"], det.meta.params["std"])[None]
    (prob,) = _session(repo, "ppocr_det").run(None, {det.config.input[0].name: det_in})
    assert prob.shape == (1, 1, 96, 480)
    mask = (prob[0, 0] > det.meta.params["thresh"]).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 100
    x0, x1 = max(xs.min() - 8, 0), min(xs.max() + 8, image.shape[1])
    y0, y1 = max(ys.min() - 8, 0), min(ys.max() + 8, image.shape[0])

    # Recognition of the crop: CTC greedy decoding with the sidecar's dictionary.
    crop = image[y0:y1, x0:x1]
    height = rec.meta.params["rec_img_shape"][1]
    width = int(np.ceil(height * crop.shape[1] / crop.shape[0]))
    rec_in = _normalize(cv2.resize(crop, (width, height)), rec.meta.params["mean"], rec.meta.params["std"])[None]
    (probs,) = _session(repo, "ppocr_rec").run(None, {rec.config.input[0].name: rec_in})
    assert probs.shape[2] == len(rec.meta.labels) == 6625
    ids = probs[0].argmax(axis=1)
    blank = rec.meta.params["blank_index"]
    chars = [rec.meta.labels[i] for j, i in enumerate(ids) if i != blank and (j == 0 or i != ids[j - 1])]
    assert "".join(chars).replace(" ", "") == "MAAM2026"


def test_ppocr_direction_classifier_tells_upright_from_upside_down(shipped_repository: Path) -> None:
    repo = ModelRepository(shipped_repository)
    cls = repo.get_installed("ppocr_cls")
    assert cls.meta.labels == ("0", "180")
    _, height, width = cls.meta.params["cls_image_shape"]
    upright = cv2.resize(_text_image("Annotation"), (width, height))
    batch = np.stack([_normalize(upright, [0.5] * 3, [0.5] * 3), _normalize(upright[::-1, ::-1], [0.5] * 3, [0.5] * 3)])
    (probs,) = _session(repo, "ppocr_cls").run(None, {cls.config.input[0].name: batch})
    assert list(probs.argmax(axis=1)) == [0, 1]


def test_haar_face_is_listed_but_never_offered_to_triton(shipped_repository: Path) -> None:
    repo = ModelRepository(shipped_repository)
    haar = repo.get_installed("haar_face")
    assert not (shipped_repository / "haar_face" / CONFIG_FILE).exists()
    assert haar.runtime == "opencv-haar" and not haar.triton
    assert "haar_face" not in {m.name for m in repo.triton_models()}
    assert {"nudenet", "ppocr_det"} <= {m.name for m in repo.triton_models()}
    # The cascade finds the astronaut's face.
    cascade = cv2.CascadeClassifier(str(haar.version_dir / haar.meta.params["cascades"]["frontal"]))
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(
        gray, scaleFactor=haar.meta.params["scale_factor"], minNeighbors=haar.meta.params["min_neighbors"]
    )
    assert len(faces) >= 1
    x, y, w, h = faces[0]
    assert 150 < x + w / 2 < 290 and 50 < y + h / 2 < 180  # her face, not the flag or the helmet


@pytest.mark.skipif(not HAS_TORCH, reason="MiniLM is exported with torch, from the [export] extra (not installed)")
def test_minilm_embeds_similar_sentences_closer(shipped_repository: Path) -> None:
    from tokenizers import Tokenizer

    repo = ModelRepository(shipped_repository)
    spec = repo.get_installed("minilm_l6_v2")
    tok = spec.meta.params["tokenizer"]
    assert tok["kind"] == "wordpiece" and tok["lowercase"] is True and tok["max_length"] == 256
    assert (spec.path / tok["vocab_file"]).is_file()
    assert [list(t.dims) for t in spec.config.output] == [[384]]
    tokenizer = Tokenizer.from_file(str(spec.path / tok["tokenizer_file"]))
    tokenizer.enable_padding()
    texts = ["a cat sleeping on a sofa", "a kitten naps on the couch", "stock markets fell sharply today"]
    encoded = tokenizer.encode_batch(texts)
    feeds = {
        "input_ids": np.array([e.ids for e in encoded], np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
    }
    (emb,) = _session(repo, "minilm_l6_v2").run(None, feeds)
    assert emb.shape == (3, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > 0.6 > emb[0] @ emb[2]


def test_reinstall_replaces_entries_without_leftovers(shipped_repository: Path, tmp_path: Path) -> None:
    from services.models.shipped import install_haar, install_nudenet

    install_nudenet(tmp_path)
    install_haar(tmp_path)
    install_nudenet(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["haar_face", "nudenet"]
    sidecar = json.loads((tmp_path / "nudenet" / "maam.json").read_text())
    assert sidecar["task"] == "nsfw_detection"


@pytest.mark.triton
def test_a_real_triton_serves_the_shipped_models_and_ignores_haar(shipped_repository: Path) -> None:
    """tritonserver (PyTriton, CPU) loads every shipped ONNX model from its generated config."""
    import tritonclient.grpc as triton_grpc

    from tests.support.cpu_triton import cpu_triton

    served = ("nudenet", "ppocr_det", "ppocr_cls", "ppocr_rec", *(("minilm_l6_v2",) if HAS_TORCH else ()))
    with cpu_triton(shipped_repository, served, what="tritonserver", timeout=240) as url:
        client = triton_grpc.InferenceServerClient(url)
        assert not client.is_model_ready("haar_face")
        rng = np.random.default_rng(0)
        cases = {
            "nudenet": ({"images": rng.random((2, 3, 320, 320), dtype=np.float32)}, (2, 22, 2100)),
            "ppocr_cls": ({"x": rng.random((3, 3, 48, 192), dtype=np.float32)}, (3, 2)),
            "ppocr_rec": ({"x": rng.random((2, 3, 48, 250), dtype=np.float32)}, (2, 31, 6625)),
            "ppocr_det": ({"x": rng.random((1, 3, 96, 480), dtype=np.float32)}, (1, 1, 96, 480)),
        }
        repo = ModelRepository(shipped_repository)
        for name, (feeds, shape) in cases.items():
            inputs = []
            for key, value in feeds.items():
                tensor = triton_grpc.InferInput(key, list(value.shape), "FP32")
                tensor.set_data_from_numpy(value)
                inputs.append(tensor)
            output = repo.get(name).config.output[0].name
            result = client.infer(name, inputs, outputs=[triton_grpc.InferRequestedOutput(output)])
            got = result.as_numpy(output)
            assert got.shape == shape
            local = _session(repo, name).run([output], feeds)[0]
            assert np.allclose(got, local, atol=1e-4)


def test_make_up_reruns_keep_installed_models_and_fill_in_missing_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from services.models import shipped
    from services.models.cli import app
    from services.models.shipped import install_nudenet

    # MiniLM's export is covered elsewhere; here it would only cost time.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        shipped.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )

    install_nudenet(tmp_path)
    marker = (tmp_path / "nudenet" / "1" / "model.onnx").stat().st_mtime_ns
    (tmp_path / "ppocr_det").mkdir()  # a committed-config-only entry: weights missing
    (tmp_path / "ppocr_det" / "maam.json").write_text('{"task": "ocr_detection", "source": "shipped"}')
    result = CliRunner().invoke(app, ["install-shipped", "--repository", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "kept nudenet" in result.output and "installed ppocr_det" in result.output
    assert (tmp_path / "nudenet" / "1" / "model.onnx").stat().st_mtime_ns == marker
    repo = ModelRepository(tmp_path)
    assert repo.get_installed("ppocr_det").config.name == "ppocr_det"
    args = CliRunner().invoke(app, ["triton-args", "--repository", str(tmp_path)]).output.split()
    assert args[0] == "--model-control-mode=explicit" and "--load-model=nudenet" in args
    assert "--load-model=haar_face" not in args


def test_without_torch_minilm_is_skipped_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from services.models import shipped

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        shipped.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    result = shipped.install_shipped_report(tmp_path)
    assert "minilm_l6_v2" not in result.installed and "haar_face" in result.installed
    assert "[export]" in result.skipped["minilm_l6_v2"] and "install-shipped" in result.skipped["minilm_l6_v2"]
    assert not (tmp_path / "minilm_l6_v2").exists()


async def test_the_onnx_backend_loads_the_shipped_repository(shipped_repository: Path) -> None:
    from services.common.inference.onnx_backend import OnnxBackend

    backend = OnnxBackend(ModelRepository(shipped_repository), workers=2)
    try:
        await backend.load()  # every installed model, Haar excluded: it is not an ONNX model
        ready = await backend.ready_models()
        assert "haar_face" not in ready and {"nudenet", "ppocr_det", "ppocr_cls", "ppocr_rec"} <= set(ready)
        result = await backend.infer("nudenet", {"images": _nudenet_input(data.astronaut())})
        assert result["output0"].shape == (1, 22, 2100)
    finally:
        await backend.close()


def test_strict_install_fails_when_a_model_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` installs with --strict: a model that could not be installed fails the run there
    instead of leaving its tests to meet a missing model; plain `make up` goes on without it."""
    import importlib.util

    from typer.testing import CliRunner

    from services.models import shipped
    from services.models.cli import app

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        shipped.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    args = ["install-shipped", "--repository", str(tmp_path), "--no-packaged"]
    lenient = CliRunner().invoke(app, args)
    assert lenient.exit_code == 0, lenient.output
    assert "skipped minilm_l6_v2" in lenient.output
    strict = CliRunner().invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1
    assert "1 shipped model(s) not installed: minilm_l6_v2" in strict.output
