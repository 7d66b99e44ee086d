"""An image captioner as two ONNX models: the vision encoder (pixels -> encoder states) and the text
decoder (tokens so far + encoder states -> next-token logits), decoded greedily or with beam search
by the image_captioning adapter using the sidecar's parameters. Default: ViT-GPT2
(`nlpconnect/vit-gpt2-image-captioning`, a transformers VisionEncoderDecoderModel)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from services.common.model_repository import ModelMeta
from services.models.errors import building, require_export_extra
from services.models.export.common import export_and_verify, write_exported

NAME = "vit_gpt2_caption"
HF_ID = "nlpconnect/vit-gpt2-image-captioning"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _modules(model):
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            states = self.model.encoder(pixel_values=pixel_values).last_hidden_state
            proj = getattr(self.model, "enc_to_dec_proj", None)
            return proj(states) if proj is not None else states

    class Decoder(torch.nn.Module):
        """Logits of the next token only: what greedy and beam search need at each step."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
            # An explicit mask keeps transformers off its packed-sequence path (torch.diff, not exportable).
            out = self.model.decoder(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                encoder_hidden_states=encoder_hidden_states,
                use_cache=False,
            )
            return out.logits[:, -1, :]

    return Encoder().eval(), Decoder().eval()


def _special_tokens(model) -> tuple[int, int, int]:
    """decoder start, end and padding ids, wherever this transformers version keeps them."""

    def first(*names: str) -> int | None:
        for source in (getattr(model, "generation_config", None), model.config, model.config.decoder):
            for attr in names:
                value = getattr(source, attr, None) if source is not None else None
                if value is not None:
                    return int(value[0] if isinstance(value, list | tuple) else value)
        return None

    start = first("decoder_start_token_id", "bos_token_id")
    eos = first("eos_token_id")
    if start is None or eos is None:
        raise ValueError("the captioner's config names no decoder start / end token")
    pad = first("pad_token_id")
    return start, eos, eos if pad is None else pad


def export_captioner(
    repository: Path,
    model,
    *,
    name: str = NAME,
    source: str = "pulled",
    license: str,
    tokenizer_dir: Path | None = None,
    image_mean: list[float] | None = None,
    image_std: list[float] | None = None,
    interpolation: str = "bilinear",
    max_length: int = 16,
    num_beams: int = 4,
) -> dict[str, float]:
    """Exports `<name>` (encoder, task image_captioning) and `<name>_decoder`; returns max abs diffs."""
    model = model.eval()
    encoder, decoder = _modules(model)
    size = int(model.config.encoder.image_size)
    rng = np.random.default_rng(0)
    pixels = ((rng.random((2, 3, size, size), dtype=np.float32) - 0.5) * 2).astype(np.float32)
    enc = export_and_verify(name, encoder, {"pixel_values": pixels}, ["encoder_hidden_states"])
    import torch

    with torch.no_grad():
        hidden = encoder(torch.from_numpy(pixels)).numpy()
    config = model.config
    start, eos, pad = _special_tokens(model)
    vocab = int(config.decoder.vocab_size)
    ids = np.concatenate(
        [np.full((2, 1), start, np.int64), rng.integers(0, vocab, (2, 4), dtype=np.int64)], axis=1
    )
    dec = export_and_verify(
        f"{name}_decoder",
        decoder,
        {"input_ids": ids, "encoder_hidden_states": hidden},
        ["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "encoder_hidden_states": {0: "batch", 1: "patches"},
            "logits": {0: "batch"},
        },
    )
    files = {f: tokenizer_dir / f for f in TOKENIZER_FILES if tokenizer_dir and (tokenizer_dir / f).is_file()}
    write_exported(
        repository, name, enc.model,
        ModelMeta(
            task="image_captioning",
            source=source,
            description="ViT-GPT2 image captioner: vision encoder",
            license=license,
            params={
                "input_size": size,
                "mean": image_mean or [0.5, 0.5, 0.5],
                "std": image_std or [0.5, 0.5, 0.5],
                # ViTImageProcessor: a plain resize to size x size (PIL, its `resample`), no crop.
                "resize": "stretch",
                "interpolation": interpolation,
                "decoder_model": f"{name}_decoder",
                "decoder_start_token_id": int(start),
                "eos_token_id": int(eos),
                "pad_token_id": int(pad),
                "max_length": max_length,
                # num_beams 1 = greedy; the adapter runs beam search with this width otherwise.
                "num_beams": num_beams,
                # Name the files actually copied: transformers 5 saves only tokenizer.json.
                "tokenizer": {
                    "kind": "gpt2-bpe",
                    **({"vocab_file": "vocab.json"} if "vocab.json" in files else {}),
                    **({"merges_file": "merges.txt"} if "merges.txt" in files else {}),
                    **({"tokenizer_file": "tokenizer.json"} if "tokenizer.json" in files else {}),
                },
            },
        ),
        files=files,
        output_dims={"encoder_hidden_states": tuple(hidden.shape[1:])},
    )
    write_exported(
        repository, f"{name}_decoder", dec.model,
        ModelMeta(
            task="caption_decoder",
            source=source,
            description="ViT-GPT2 image captioner: GPT-2 decoder (next-token logits, no KV cache)",
            license=license,
            params={"encoder_model": name, "vocab_size": vocab},
        ),
        output_dims={"logits": (vocab,)},
    )
    return {name: enc.max_abs_diff, f"{name}_decoder": dec.max_abs_diff}


def pull_captioner(repository: Path, upstream) -> dict[str, float]:
    require_export_extra("pulling the image captioner", ("torch", "transformers"))
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    from services.models.hub import hf_snapshot

    local = hf_snapshot(upstream, "the captioner's weights, tokenizer and image processor")
    with building(upstream.id):
        model = VisionEncoderDecoderModel.from_pretrained(local, attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(local)
        processor = AutoImageProcessor.from_pretrained(local)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return export_captioner(
            repository, model,
            license="Apache-2.0 (nlpconnect/vit-gpt2-image-captioning)",
            tokenizer_dir=Path(tmp),
            image_mean=[float(v) for v in processor.image_mean],
            image_std=[float(v) for v in processor.image_std],
            interpolation=pil_interpolation_name(processor.resample),
        )


def pil_interpolation_name(resample: int) -> str:
    """PIL's resampling filter (an int or Image.Resampling) -> the adapters' interpolation name."""
    from PIL import Image

    names = {Image.Resampling.NEAREST: "nearest", Image.Resampling.BILINEAR: "bilinear",
             Image.Resampling.BICUBIC: "bicubic", Image.Resampling.LANCZOS: "lanczos"}
    return names[Image.Resampling(int(resample))]
