"""ALBEF: a checkpoint in the published layout (pre-training: BERT under `text_encoder.bert.`, momentum copies,
queues, fusion layers, ITM head) loads into the unimodal encoders; ITC fine-tuning lowers its loss on ALBEF's
caption json; the two-tower export matches torch and carries the tokenizer CMRR needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from services.common.model_repository import ModelRepository
from services.common.text_tokenizers import tokenizer_from_params
from services.models.export.common import onnx_outputs
from services.models.research.albef.checkpoint import architecture_of, load_albef, read_state_dict
from services.models.research.albef.config import AlbefArchitecture, AlbefConfig
from services.models.research.albef.data import pre_caption
from services.models.research.albef.export import export_albef
from services.models.research.albef.model import AlbefEncoders
from services.models.research.albef.train import train_albef
from tests.support.research_data import TINY_ALBEF, write_caption_pairs, write_vocab


def _published_layout(model: AlbefEncoders) -> dict[str, torch.Tensor]:
    """The model's weights under ALBEF.pth's names, with what the unimodal encoders must ignore."""
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        key = key.replace("image.", "", 1).replace("text.text_encoder.", "text_encoder.bert.", 1)
        key = key.replace("text.text_proj", "text_proj", 1)
        state[key] = value.clone()
        if not key.startswith("temp"):
            state[key.replace(".", "_m.", 1)] = torch.randn_like(value)  # momentum copies
    hidden = model.arch.text_width
    state["text_encoder.bert.encoder.layer.6.crossattention.self.query.weight"] = torch.randn(hidden, hidden)
    state["text_encoder.cls.predictions.bias"] = torch.randn(model.arch.vocab_size)
    state["itm_head.weight"] = torch.randn(2, hidden)
    state["image_queue"] = torch.randn(model.arch.embed_dim, 8)
    return state


def test_a_published_checkpoint_loads_into_the_encoders(tmp_path: Path) -> None:
    torch.manual_seed(0)
    arch = AlbefArchitecture(**TINY_ALBEF)
    original = AlbefEncoders(arch).eval()
    path = tmp_path / "ALBEF.pth"
    torch.save({"model": _published_layout(original), "epoch": 29}, path)
    assert architecture_of(read_state_dict(path), arch) == arch
    loaded = load_albef(path, arch)
    images, ids = torch.randn(2, 3, 32, 32), torch.randint(5, 20, (2, 12))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.allclose(loaded.image(images), original.image(images), atol=1e-6)
        assert torch.allclose(loaded.text(ids, mask), original.text(ids, mask), atol=1e-6)
    bigger = load_albef(path, arch.model_copy(update={"image_res": 48}))  # position embeddings resampled
    assert bigger.image.visual_encoder.pos_embed.shape[1] == 3 * 3 + 1


def test_itc_fine_tuning_lowers_the_loss_and_reports_recall(tmp_path: Path) -> None:
    root = write_caption_pairs(tmp_path / "pairs")
    config = AlbefConfig.model_validate({
        "architecture": TINY_ALBEF,
        "training": {"train_file": str(root / "train.json"), "test_file": str(root / "test.json"),
                     "image_root": str(root), "vocab_file": str(write_vocab(tmp_path / "vocab.txt")),
                     "batch_size": 6, "steps": 20, "learning_rate": 2e-3, "warmup_steps": 2},
    })
    run = train_albef(config, tmp_path / "out")
    first, last = run.log.first_last(4)
    assert last < first, run.log.losses
    assert set(run.metrics) == {f"{d}_r@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)}
    assert pre_caption("A Photo-of the <person>, smiling!") == "a photo of the person smiling"


def test_two_tower_export_matches_torch_with_the_sidecar_tokenizer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = AlbefEncoders(AlbefArchitecture(**TINY_ALBEF)).eval()
    vocab = write_vocab(tmp_path / "vocab.txt")
    diffs = export_albef(tmp_path / "repo", model, "tiny_albef", vocab, source="test")
    assert max(diffs.values()) < 1e-4
    repo = ModelRepository(tmp_path / "repo")
    image, text = repo.get_installed("tiny_albef_image"), repo.get_installed("tiny_albef_text")
    assert image.meta.params["text_model"] == "tiny_albef_text" and image.meta.params["space"] == "tiny_albef"
    tokenizer = tokenizer_from_params(text.path, text.meta.params, text.meta.source)
    ids = tokenizer(["a photo of a red square", "blue sky"])
    assert ids[0, 0] == 3 and ids.shape == (2, 12)  # [CLS] first, padded to the context length
    feeds = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}
    with torch.no_grad():
        want = model.text(torch.from_numpy(ids), torch.from_numpy(feeds["attention_mask"])).numpy()
    got = onnx_outputs(text.weights_path, feeds)[0]
    assert np.abs(want - got).max() < 1e-4 and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    pixels = {"images": np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)}
    with torch.no_grad():
        want = model.image(torch.from_numpy(pixels["images"])).numpy()
    assert np.abs(want - onnx_outputs(image.weights_path, pixels)[0]).max() < 1e-4
