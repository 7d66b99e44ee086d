"""Loads a published ALBEF checkpoint (ALBEF.pth of the 14M pre-training, or a retrieval fine-tuning such as
mscoco.pth) into AlbefEncoders: only the unimodal towers, the projections and the temperature are taken;
momentum copies, queues, the ITM/MLM heads and BERT layers 6–11 (the fusion encoder) are left out."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed

from services.models.errors import ModelsError
from services.models.research.albef.config import AlbefArchitecture
from services.models.research.albef.model import AlbefEncoders
from services.models.research.training import first_line


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelsError(f"cannot read the ALBEF checkpoint {path}: {first_line(exc)}") from exc
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not any(k.startswith("visual_encoder.") for k in state):
        raise ModelsError(f"{path} is not an ALBEF checkpoint (no visual_encoder.* weights)")
    return state


def _text_key(key: str, layers: int) -> str | None:
    """ALBEF text key -> AlbefEncoders key, or None for what the unimodal text encoder does not use."""
    rest = key.removeprefix("text_encoder.")
    rest = rest.removeprefix("bert.")  # the pre-training checkpoint wraps BERT for masked LM
    if rest.startswith("embeddings.position_ids"):
        return None
    if rest.startswith("encoder.layer."):
        if int(rest.split(".")[2]) >= layers:
            return None
    elif not rest.startswith("embeddings."):
        return None  # the MLM head ("cls.*") and the pooler
    return f"text.text_encoder.{rest}"


def mapped(state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("visual_encoder."):
            out[f"image.{key}"] = value
        elif key.startswith(("vision_proj.", "text_proj.")):
            out[("image." if key.startswith("vision") else "text.") + key] = value
        elif key == "temp":
            out["temp"] = value
        elif key.startswith("text_encoder."):
            target = _text_key(key, layers)
            if target is not None:
                out[target] = value
    return out


def architecture_of(state: dict[str, torch.Tensor], base: AlbefArchitecture | None = None) -> AlbefArchitecture:
    """The architecture whose shapes the checkpoint has (resolution from pos_embed, sizes from the weights)."""
    base = base or AlbefArchitecture()
    tokens = state["visual_encoder.pos_embed"].shape[1] - 1
    side = math.isqrt(tokens)
    words = next(v for k, v in state.items() if k.endswith("embeddings.word_embeddings.weight") and "_m." not in k)
    return base.model_copy(update={
        "image_res": side * base.patch_size,
        "vision_width": int(state["visual_encoder.cls_token"].shape[-1]),
        "vocab_size": int(words.shape[0]), "text_width": int(words.shape[1]),
        "embed_dim": int(state["vision_proj.weight"].shape[0]),
    })


def load_albef(path: Path, arch: AlbefArchitecture | None = None) -> AlbefEncoders:
    state = read_state_dict(path)
    arch = arch or architecture_of(state)
    model = AlbefEncoders(arch)
    weights = mapped(state, arch.text_layers)
    pos = weights.get("image.visual_encoder.pos_embed")
    grid = arch.image_res // arch.patch_size
    if pos is not None and pos.shape[1] != grid * grid + 1:
        weights["image.visual_encoder.pos_embed"] = resample_abs_pos_embed(pos, [grid, grid], num_prefix_tokens=1)
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys:
        raise ModelsError(f"{path}: the checkpoint lacks {len(result.missing_keys)} encoder weights, e.g. "
                          f"{', '.join(result.missing_keys[:3])}")
    return model.eval()
