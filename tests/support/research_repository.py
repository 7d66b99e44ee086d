"""One model repository holding the research models as their exporters write them (tiny random-weight
configurations of the real architectures) plus the shipped PP-OCR models MemeFier reads meme text with, and
one real CPU Triton (PyTriton) serving it: session fixtures shared by the models, annotation and CMRR tests.
The torch modules are kept, so tests compare what the services answer with torch's own output."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cpu_triton import cpu_triton
from tests.support.research_data import TINY_ALBEF, TINY_MEMEFIER, TINY_MVSD, write_vocab

HAS_TORCH = importlib.util.find_spec("torch") is not None
MEMEFIER_MEME, MEMEFIER_HATEFUL = "tiny_memefier_meme", "tiny_memefier_hateful"
MVSD, ALBEF, STUDENT = "tiny_mvsd", "tiny_albef", "tiny_distilled_nsfw"
TRITON_MODELS = (MEMEFIER_MEME, MEMEFIER_HATEFUL, MVSD, f"{ALBEF}_image", f"{ALBEF}_text", STUDENT)


@dataclass
class ResearchRepository:
    root: Path
    modules: dict[str, Any]  # repository name -> the torch module it was exported from


def build_research_repository(root: Path) -> ResearchRepository:
    import torch

    from services.models.research.albef.config import AlbefArchitecture
    from services.models.research.albef.export import export_albef
    from services.models.research.albef.model import AlbefEncoders
    from services.models.research.indistill.export import export_classifier
    from services.models.research.indistill.networks import build_student
    from services.models.research.memefier.clip_features import ClipFeatures, load_clip
    from services.models.research.memefier.config import MemefierArchitecture
    from services.models.research.memefier.export import export_memefier
    from services.models.research.memefier.model import MemeFier
    from services.models.research.mvsd.config import MvsdArchitecture
    from services.models.research.mvsd.export import export_mvsd
    from services.models.research.mvsd.model import MVSD as MvsdModel
    from services.models.shipped import install_ppocr

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        modules: dict[str, Any] = {}
        arch = MemefierArchitecture.model_validate(TINY_MEMEFIER)
        for name, head in ((MEMEFIER_MEME, "meme"), (MEMEFIER_HATEFUL, "hateful")):
            model = MemeFier(arch, ClipFeatures(load_clip(arch.clip)), {head: 1}).eval()
            export_memefier(root, model, name, source="test")
            modules[name] = model
        modules[MVSD] = MvsdModel(MvsdArchitecture(**TINY_MVSD)).eval()
        export_mvsd(root, modules[MVSD], MVSD, clip_frames=3, source="test")
        modules[ALBEF] = AlbefEncoders(AlbefArchitecture(**TINY_ALBEF)).eval()
        export_albef(root, modules[ALBEF], ALBEF, write_vocab(root / "albef_vocab.txt"), source="test")
        student = build_student("mobilenet_v2:0.25", ("Drawing", "Hentai", "Neutral", "Porn", "Sexy"), 64)
        student.module.eval()
        export_classifier(root, student, STUDENT, task="nsfw_classification",
                          positive_labels=("Hentai", "Porn", "Sexy"), description="tiny", license="test",
                          source="test")
        modules[STUDENT] = student
        install_ppocr(root)
    finally:
        torch.set_num_threads(threads)
    return ResearchRepository(root, modules)


@pytest.fixture(scope="session")
def research_repository(tmp_path_factory: pytest.TempPathFactory) -> ResearchRepository:
    if not HAS_TORCH:
        pytest.skip("exporting the research models needs torch from the [export] extra")
    return build_research_repository(tmp_path_factory.mktemp("research_models"))


@pytest.fixture(scope="session")
def research_triton_url(research_repository: ResearchRepository) -> Iterator[str]:
    """A real tritonserver (PyTriton, CPU) serving the research repository; yields host:port."""
    with cpu_triton(research_repository.root, TRITON_MODELS, what="tritonserver (research)") as url:
        yield url
