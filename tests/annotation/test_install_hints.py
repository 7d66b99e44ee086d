"""A task without an installed model answers with the command that installs one: every row of the
task table has a hint, and every `maam models pull NAME` a hint names is in the pull table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.annotation.catalog import MissingModelError, ModelCatalog
from services.annotation.install_hints import INSTALLS
from services.annotation.models.formats import BUILTINS
from services.annotation.tasks import TASKS
from services.common.inference import create_backend
from services.common.model_repository import ModelRepository
from services.common.settings import InferenceSettings, Settings
from services.models.pull import PULLABLE


def test_every_pull_a_hint_names_is_in_the_pull_table() -> None:
    named = {m for hint in INSTALLS.values() for m in re.findall(r"`maam models pull (\w+)`", hint)}
    assert named and named <= set(PULLABLE), named - set(PULLABLE)


def test_every_row_has_a_hint() -> None:
    for spec in TASKS:
        tasks = spec.models + spec.fallback
        assert any(t in INSTALLS or t in BUILTINS for t in tasks), spec.rpc


@pytest.mark.parametrize(("rpc", "pull"), [
    ("ImageDisturbingContentDetection", "clip_zeroshot"), ("ImageMemeDetection", "clip_zeroshot"),
    ("VideoDisturbingContentDetection", "clip_zeroshot"), ("ImageActionRecognition", "kinetics_r2plus1d_18"),
    ("VideoActionRecognition", "kinetics_r2plus1d_18"), ("ImageCaptioning", "vit_gpt2_caption"),
])
def test_an_empty_repository_names_the_pull(tmp_path: Path, rpc: str, pull: str) -> None:
    settings = Settings(model_repository=tmp_path, inference=InferenceSettings(backend="onnx", onnx_workers=1))
    catalog = ModelCatalog(ModelRepository(tmp_path), create_backend(settings, ModelRepository(tmp_path)))
    spec = next(s for s in TASKS if s.rpc == rpc)
    with pytest.raises(MissingModelError, match=f"`maam models pull {pull}`"):
        catalog.unit(spec)
