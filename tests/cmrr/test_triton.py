"""The retrieval path on a real tritonserver gives what ONNX Runtime in-process gives."""

from __future__ import annotations

import pytest

from tests.cmrr.conftest import StartServer, add, image_bytes

pytestmark = pytest.mark.triton


def test_triton_and_onnx_backends_retrieve_the_same(start_server: StartServer, triton_url: str, tmp_path) -> None:
    answers = []
    for backend in ("onnx", "triton"):
        server = start_server(data_dir=tmp_path / backend, backend=backend, triton_url=triton_url)
        for i, text in enumerate(("a tabby cat", "a rocket on a launchpad", "a cup of coffee")):
            assert add(server, f"t{i}", "text", "bob", text.encode()).status_code == 200
        for name in ("astronaut", "chelsea", "coffee"):
            assert add(server, f"i-{name}", "image", "bob", image_bytes(name)).status_code == 200
        text_query = server.client.post("/retrieve_contents", params={"user": "a", "type": "text", "k": 3},
                                        content=b"a cup of coffee").json()
        image_query = server.client.post("/retrieve_contents", params={"user": "a", "type": "image", "k": 3},
                                         content=image_bytes("chelsea")).json()
        answers.append((text_query, image_query))
        server.stop()
    (onnx_text, onnx_image), (triton_text, triton_image) = answers
    for onnx_answer, triton_answer in ((onnx_text, triton_text), (onnx_image, triton_image)):
        for part in ("text", "image"):
            assert triton_answer[part]["contents"] == onnx_answer[part]["contents"]
            assert triton_answer[part]["scores"] == pytest.approx(onnx_answer[part]["scores"], abs=1e-4)
    assert onnx_text["text"]["contents"][0] == "t2" and onnx_image["image"]["contents"][0] == "i-chelsea"
