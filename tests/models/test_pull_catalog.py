"""The pull table against the annotation service's task table: every model a pull installs has a
repository task that some adapter builds and some row (or pipeline) runs, so nothing pulled is
skipped silently by the catalog; and every pull pins where its weights come from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2

from services.annotation.models.formats import model_format
from services.annotation.tasks import TASKS
from services.common.model_repository import ModelMeta, ModelSpec
from services.models.pull import PULLABLE
from services.models.tasks import TASKS as IMPORT_TASKS

# Repository tasks run as a part of another one's pipeline (the catalog links them), not by a row.
PARTS = {"caption_decoder": "image_captioning", "face_embedding": "face_detection"}
# The params.format each pull's export writes (none: the task's default format).
FORMATS = {"ssdlite320_coco": "yolov8", "scrfd_10g": "scrfd", "kinetics_r2plus1d_18": "torchvision_video",
           **{f"clip_zeroshot_{h}": "clip_zeroshot" for h in ("disturbing", "meme", "tags")}}


def _rows_tasks() -> set[str]:
    return {t for row in TASKS for t in (*row.models, *row.fallback, *row.helpers.values())}


PULLED = [(key, name, task) for key, item in PULLABLE.items() for name, task in item.models.items()]


@pytest.mark.parametrize(("key", "name", "task"), PULLED, ids=[n for _, n, _ in PULLED])
def test_every_pulled_model_is_served_by_an_adapter(key: str, name: str, task: str) -> None:
    params = {"format": FORMATS[name]} if name in FORMATS else {}
    spec = ModelSpec(name, Path("/nonexistent"), model_config_pb2.ModelConfig(name=name),
                     ModelMeta(task=task, source="pulled", params=params))
    if task in PARTS:
        assert PARTS[task] in PULLABLE[key].models.values(), f"{name}: {task} is a part of a pipeline not pulled"
        return
    assert model_format(spec) is not None, f"{name}: no adapter builds task {task!r}"
    assert task in _rows_tasks(), f"{name}: no row of the task table runs {task!r}"
    assert task in IMPORT_TASKS, f"{name}: services/models/tasks.py has no I/O rule for {task!r}"


def test_every_pull_pins_its_upstream() -> None:
    for key, item in PULLABLE.items():
        up = item.upstream
        assert up.kind in ("hf", "url", "local") and up.id and up.library_id, key
        if up.kind == "local":  # built from installed models (the zero-shot heads): nothing is fetched
            continue
        if up.kind == "hf" and up.revision is not None:
            assert re.fullmatch(r"[0-9a-f]{40}", up.revision), f"{key}: a revision is a full commit hash"
        for _, revision in up.extra:
            assert re.fullmatch(r"[0-9a-f]{40}", revision), key
    unpinned = sorted(k for k, p in PULLABLE.items() if p.upstream.revision is None and p.upstream.kind != "local")
    # Each one is named as unpinned in docs/models.md, with why.
    docs = (Path(__file__).parents[2] / "docs" / "models.md").read_text(encoding="utf-8")
    for key in unpinned:
        assert re.search(rf"`{key}`[^\n]*unpinned", docs), f"docs/models.md must say {key} is unpinned"
