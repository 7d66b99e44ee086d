"""CMRR with `MAAM_CMRR__MODEL=albef`: the ALBEF towers as `maam models pull albef_14m` exports them (here a tiny
random-weight configuration of the same architecture, same exporter) are the encoder pair it finds, on
ONNX Runtime and on a real Triton, and its scores are the torch towers' cosine similarities."""

from __future__ import annotations

import io
from typing import Any, cast

import numpy as np
import pytest
import torch
from PIL import Image

from services.annotation.models.preprocess import to_tensor
from services.common.text_tokenizers import tokenizer_from_params
from tests.cmrr.conftest import StartServer, add, image_bytes
from tests.support.research_repository import ALBEF, ResearchRepository


@pytest.mark.parametrize("backend", ["onnx", pytest.param("triton", marks=pytest.mark.triton)])
def test_model_albef_serves_the_albef_towers(
    start_server: StartServer, research_repository: ResearchRepository, request: pytest.FixtureRequest,
    tmp_path, backend: str,
) -> None:
    from services.cmrr.encoders import ImageEncoder
    from services.common.model_repository import ModelRepository

    url = request.getfixturevalue("research_triton_url") if backend == "triton" else "127.0.0.1:8001"
    server = start_server(repository=research_repository.root, data_dir=tmp_path / backend, backend=backend,
                          triton_url=url, model="albef")
    info = server.client.get("/info").json()["encoders"]
    assert info["family"] == "albef" and info["cross_modal"] is True
    assert (info["image_model"], info["text_model"]) == (f"{ALBEF}_image", f"{ALBEF}_text")
    photos = {name: image_bytes(name) for name in ("chelsea", "coffee")}
    for name, data in photos.items():
        assert add(server, f"i-{name}", "image", "bob", data).status_code == 200
    query = "a photo of a cat"
    body = server.client.post("/retrieve_contents", params={"user": "a", "type": "text", "k": 2},
                              content=query.encode()).json()

    repo = ModelRepository(research_repository.root)
    image_spec, text_spec = repo.get_installed(f"{ALBEF}_image"), repo.get_installed(f"{ALBEF}_text")
    towers = research_repository.modules[ALBEF]
    ids = tokenizer_from_params(text_spec.path, text_spec.meta.params, text_spec.meta.source)([query])
    pixels = ImageEncoder(image_spec, cast(Any, None), 10_000_000).preprocess  # CMRR's own preprocessing
    with torch.no_grad():
        text = towers.text(torch.from_numpy(ids), torch.from_numpy((ids != 0).astype(np.int64)))[0].numpy()
        images = {n: towers.image(torch.from_numpy(pixels(d)[None].astype(np.float32)))[0].numpy()
                  for n, d in photos.items()}
    stretched = np.asarray(Image.open(io.BytesIO(photos["coffee"])).convert("RGB").resize((32, 32), Image.BICUBIC))
    assert np.allclose(pixels(photos["coffee"]), to_tensor(stretched, image_spec.meta.params["mean"],
                                                          image_spec.meta.params["std"]), atol=1e-6)
    expected = sorted(((float(text @ v), f"i-{n}") for n, v in images.items()), reverse=True)
    assert body["image"]["contents"] == [name for _, name in expected]
    assert body["image"]["scores"] == pytest.approx([score for score, _ in expected], abs=1e-4)
