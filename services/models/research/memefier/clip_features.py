"""Frozen CLIP features for MemeFier: the image embedding o^g and its patch embeddings {o_i^g}, the text
embedding o^x and its token embeddings {o_i^x} (open_clip's towers; the patch and token embeddings are the
final-layer, layer-normed states before the projection, as MemeFier taps them)."""

from __future__ import annotations

import open_clip
import torch
from open_clip.transformer import text_global_pool
from torch import nn

from services.models.errors import fetching
from services.models.research.memefier.config import ClipSpec


def load_clip(spec: ClipSpec) -> nn.Module:
    if spec.custom is not None:
        return open_clip.model.CLIP(**spec.custom)
    with fetching(f"open_clip {spec.name} weights ({spec.pretrained})"):
        model, _, _ = open_clip.create_model_and_transforms(spec.name, pretrained=spec.pretrained)
    return model


class ClipFeatures(nn.Module):
    """`image(x)` → (o^g [B, E], patches [B, n_g, W_v]); `text(ids)` → (o^x [B, E], tokens [B, n_x, W_t])."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip.eval()
        self.clip.visual.output_tokens = True
        for parameter in self.clip.parameters():
            parameter.requires_grad_(False)

    @property
    def embed_dim(self) -> int:
        return int(self.clip.text_projection.shape[1])

    @property
    def vision_width(self) -> int:
        return int(self.clip.visual.ln_post.normalized_shape[0])

    @property
    def text_width(self) -> int:
        return int(self.clip.ln_final.normalized_shape[0])

    @property
    def image_size(self) -> int:
        size = self.clip.visual.image_size
        return int(size if isinstance(size, int) else size[0])

    @property
    def context_length(self) -> int:
        return int(self.clip.context_length)

    def train(self, mode: bool = True) -> ClipFeatures:
        super().train(mode)
        self.clip.eval()  # frozen: no dropout, no batch statistics
        return self

    def image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = self.clip.visual(images)
        return pooled, tokens

    def text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clip = self.clip
        x = clip.token_embedding(ids) + clip.positional_embedding
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        pooled = text_global_pool(x, ids, clip.text_pool_type)
        projection = clip.text_projection
        pooled = projection(pooled) if isinstance(projection, nn.Linear) else pooled @ projection
        return pooled, x
