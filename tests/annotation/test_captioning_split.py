"""The encoder-decoder captioner as `maam models pull vit_gpt2_caption` installs it: a repository made
by the real export code from a random-weight tiny ViT-GPT2 with a tiny GPT-2 tokenizer, served through
a real gRPC channel; the captions must be the torch model's own `generate()` output, decoded with the
same tokenizer."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="building the captioner repository needs torch from the [export] extra")

from protos import media_annotation_pb2 as pb  # noqa: E402
from services.annotation.models.bpe_text import ByteBpeDecoder  # noqa: E402
from services.annotation.models.preprocess import model_input  # noqa: E402
from services.common.model_repository import ModelRepository  # noqa: E402
from tests.annotation.conftest import service_settings  # noqa: E402
from tests.support.media import encode_image  # noqa: E402

on_service_loop = pytest.mark.asyncio(loop_scope="session")

START, EOS, VOCAB, SIZE, MAX_LENGTH = 98, 99, 100, 32, 12
MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


@dataclass
class TinyCaptioner:
    root: Path
    model: object  # the torch VisionEncoderDecoderModel
    tokenizer: object  # transformers' GPT2Tokenizer on the same files


def _tokenizer_files(out: Path) -> Path:
    """A 100-token byte-level BPE: single bytes, 'Ġ'+letter merges, bigrams, a two-byte 'é', and the
    start / end tokens at the ids the tiny decoder uses. Saved by transformers (tokenizer.json +
    tokenizer_config.json) plus vocab.json / merges.txt as transformers 4 writes them."""
    from transformers import GPT2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    b2u = bytes_to_unicode()
    space, letters = b2u[ord(" ")], "abcdefghijklmnopqrstuvwxyz"
    bigrams = "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi"
    bigrams += " ri ro ic ne"
    merges = [(space, c) for c in letters] + [(b2u[0xC3], b2u[0xA9])] + [(b[0], b[1]) for b in bigrams.split()]
    tokens = [space, *letters, ".", ",", "'", b2u[0xC3], b2u[0xA9]] + ["".join(m) for m in merges]
    assert len(tokens) == START
    vocab = {token: i for i, token in enumerate(tokens)} | {"<|startoftext|>": START, "<|endoftext|>": EOS}
    src = out / "src"
    src.mkdir(parents=True)
    (src / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (src / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", "utf-8")
    tokenizer = GPT2Tokenizer(
        vocab=str(src / "vocab.json"), merges=str(src / "merges.txt"), bos_token="<|startoftext|>",
        eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>",
    )
    saved = out / "tokenizer"
    tokenizer.save_pretrained(saved)
    for name in ("vocab.json", "merges.txt"):
        if not (saved / name).exists():
            shutil.copy(src / name, saved / name)
    return saved


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyCaptioner:
    """`tiny_caption` (greedy) and `tiny_beam` (3 beams, tokenizer.json only, as transformers 5 saves it),
    each with its `_decoder`, exported by services.models.export.captioner."""
    from transformers import GPT2Config, GPT2Tokenizer, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    from services.models.export.captioner import export_captioner

    base = tmp_path_factory.mktemp("captioner")
    tokenizer_dir = _tokenizer_files(base)
    beam_tokenizer_dir = base / "fast_only"
    beam_tokenizer_dir.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, beam_tokenizer_dir / name)

    torch.manual_seed(0)
    encoder = ViTConfig(image_size=SIZE, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)
    # A wide initialisation so random weights give varied tokens that depend on the image.
    decoder = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=1, n_head=2, add_cross_attention=True,
                         is_decoder=True, bos_token_id=START, eos_token_id=EOS, initializer_range=0.5)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = START, EOS, EOS
    model = VisionEncoderDecoderModel(config=config).eval()
    root = base / "repository"
    common = {"source": "test", "license": "test", "image_mean": MEAN, "image_std": STD, "max_length": MAX_LENGTH}
    export_captioner(root, model, name="tiny_caption", tokenizer_dir=tokenizer_dir, num_beams=1, **common)
    export_captioner(root, model, name="tiny_beam", tokenizer_dir=beam_tokenizer_dir, num_beams=3, **common)
    assert (root / "tiny_caption" / "vocab.json").is_file() and not (root / "tiny_beam" / "vocab.json").exists()
    return TinyCaptioner(root, model, GPT2Tokenizer.from_pretrained(tokenizer_dir))


def _generate(tiny: TinyCaptioner, rgb: np.ndarray, **options) -> list[str]:
    """The torch model's own generate() on the adapter's preprocessing of the same image."""
    params = ModelRepository(tiny.root).get("tiny_caption").meta.params  # the sidecar's resize, as the adapter
    pixels = torch.from_numpy(model_input(rgb, params)[None])
    with torch.no_grad():
        ids = tiny.model.generate(pixel_values=pixels, max_length=MAX_LENGTH, do_sample=False, **options)
    return [tiny.tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids.tolist()]


@on_service_loop
async def test_greedy_caption_is_the_torch_models_generate(
    tiny: TinyCaptioner, start_service, photos: dict[str, np.ndarray]
) -> None:
    svc = await start_service(service_settings(tiny.root))
    captions = []
    for name in ("chelsea", "astronaut", "rocket"):
        rgb = photos[name]
        reply = await svc.stub.ImageCaptioning(pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG"),
                                                                    model="tiny_caption"))
        assert reply.model == "tiny_caption"
        expected = _generate(tiny, rgb, num_beams=1)[0]
        assert expected and reply.caption == expected
        assert 0 < reply.score <= 1 and list(reply.alternatives) == []
        captions.append(reply.caption)
    assert len(set(captions)) > 1  # the caption depends on the image: the encoder states reach the decoder


@on_service_loop
async def test_beam_search_is_the_torch_models_beam_search(
    tiny: TinyCaptioner, start_service, photos: dict[str, np.ndarray]
) -> None:
    svc = await start_service(service_settings(tiny.root))
    rgb = photos["coffee"]
    reply = await svc.stub.ImageCaptioning(pb.AnnotationRequest(asset_data=encode_image(rgb, "PNG"), model="tiny_beam"))
    expected = _generate(tiny, rgb, num_beams=3, num_return_sequences=3, length_penalty=1.0, early_stopping=False)
    assert reply.caption == expected[0]
    assert list(reply.alternatives) == expected[1:] and len(expected) == 3  # the other beams, best first
    assert 0 < reply.score <= 1


@on_service_loop
async def test_image_annotation_reports_each_captioner_once_and_no_decoder(
    tiny: TinyCaptioner, start_service, photos: dict[str, np.ndarray]
) -> None:
    svc = await start_service(service_settings(tiny.root))
    data = encode_image(photos["chelsea"], "PNG")
    reply = await svc.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=data))
    assert reply.status == 0 and not reply.model_errors, reply.model_errors
    # The model-free saliency fallback always runs besides; the decoders are parts, never models of their own.
    assert sorted(reply.valid_models) == ["spectral-residual", "tiny_beam", "tiny_caption"]
    assert svc.controller.catalog.names() == ["tiny_beam", "tiny_caption"]
    stream = [m async for m in svc.stub.ImageAnnotationStream(pb.ImageAnnotationRequest(image_data=data))]
    captions = [m.image_captioning_result for m in stream if m.HasField("image_captioning_result")]
    results = {c.model: c for c in captions}
    assert sorted(results) == ["tiny_beam", "tiny_caption"] and len(captions) == 2
    assert not any(m.HasField("model_error") for m in stream)
    assert results["tiny_caption"].caption == _generate(tiny, photos["chelsea"], num_beams=1)[0]
    unary = reply.image_captioning_result
    assert unary == results[unary.model]


@on_service_loop
async def test_missing_decoder_is_a_clear_model_error(
    tiny: TinyCaptioner, start_service, photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    root = tmp_path / "repository"
    shutil.copytree(tiny.root / "tiny_caption", root / "tiny_caption")
    svc = await start_service(service_settings(root))
    reply = await svc.stub.ImageAnnotation(pb.ImageAnnotationRequest(image_data=encode_image(photos["chelsea"], "PNG")))
    assert "tiny_caption" not in reply.valid_models
    errors = [e for e in reply.model_errors if "tiny_caption" in str(e)]
    assert len(errors) == 1
    error = errors[0]
    assert "tiny_caption_decoder" in str(error) and "maam models pull tiny_caption" in str(error)


def test_byte_bpe_decoder_matches_transformers(tiny: TinyCaptioner) -> None:
    """Random ids (split multi-byte characters, specials in the middle) decode as transformers does,
    from vocab.json and from tokenizer.json alike."""
    rng = np.random.default_rng(0)
    from_vocab = ByteBpeDecoder.from_dir(tiny.root / "tiny_caption", special_ids=(START, EOS))
    from_fast = ByteBpeDecoder.from_dir(tiny.root / "tiny_beam", special_ids=())  # specials from added_tokens
    for _ in range(500):
        ids = rng.integers(0, VOCAB, int(rng.integers(1, 20))).tolist()
        want = tiny.tokenizer.decode(ids, skip_special_tokens=True)
        assert from_vocab.decode(ids) == want and from_fast.decode(ids) == want
    assert from_vocab.decode(tiny.tokenizer.encode(" the café is open.")) == " the café is open."
