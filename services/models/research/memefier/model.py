"""MemeFier's network (source document 3.1.2, Figure 11).

Encoding: frozen CLIP features, each stream projected to the model dimension d and L2-normalised, with a
type embedding (patches, tokens, persons). Fusion stage 1: f_i^g = o_i^g ⊗ o^x, f_i^x = o_i^x ⊗ o^g.
Stage 2: a Transformer encoder over [CLS, f^g, f^x, o^e]. Heads: one linear layer per output on r_cls.
Caption supervision: a Transformer decoder reconstructs the background caption from {r_i^g}."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from services.models.research.memefier.clip_features import ClipFeatures
from services.models.research.memefier.config import MemefierArchitecture

# FairFace's demographic labels: 7 races, 2 genders, 9 age bands; 0 pads (no person).
ATTRIBUTES = (
    "<pad>", "White", "Indian", "Southeast Asian", "Middle Eastern", "Latino_Hispanic", "Black", "East Asian",
    "Male", "Female", "0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+",
)
PATCHES, TOKENS, PERSONS = 0, 1, 2


def _projection(width: int, d: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, d), nn.Dropout(dropout))


class CaptionDecoder(nn.Module):
    def __init__(self, d: int, arch: MemefierArchitecture, vocab_size: int, max_len: int, memory_len: int) -> None:
        super().__init__()
        spec = arch.decoder
        self.dim = spec.d
        self.memory = nn.Linear(d, spec.d)
        self.embed = nn.Embedding(vocab_size, spec.d)
        self.memory_position = nn.Embedding(memory_len, spec.d)
        self.target_position = nn.Embedding(max_len, spec.d)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(spec.d, spec.h, spec.dff, batch_first=True), num_layers=spec.L
        )
        self.out = nn.Linear(spec.d, vocab_size)

    def forward(self, image_states: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits [B, L, V] of each next caption word from the words before it."""
        memory = self.memory(image_states)
        memory = memory + self.memory_position(torch.arange(memory.shape[1], device=memory.device))
        length = caption.shape[1]
        target = self.embed(caption) * math.sqrt(self.dim)
        target = target + self.target_position(torch.arange(length, device=caption.device))
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=caption.device), diagonal=1)
        states = self.decoder(target, memory, tgt_mask=causal, tgt_key_padding_mask=caption == 0, tgt_is_causal=True)
        return self.out(states)


class MemeFier(nn.Module):
    """(images, input_ids[, attributes]) → {head: logits [B, classes]}."""

    def __init__(
        self, arch: MemefierArchitecture, clip: ClipFeatures, heads: dict[str, int], *,
        caption_vocab: int = 0, caption_len: int = 0,
    ) -> None:
        super().__init__()
        self.arch, self.features, self.head_sizes = arch, clip, dict(heads)
        d = arch.d
        self.project_patches = _projection(clip.vision_width, d, arch.dropout)
        self.project_tokens = _projection(clip.text_width, d, arch.dropout)
        self.project_image = _projection(clip.embed_dim, d, arch.dropout)
        self.project_text = _projection(clip.embed_dim, d, arch.dropout)
        self.type_embedding = nn.Embedding(3, d)
        if arch.external:
            self.person_embedding = nn.Sequential(nn.Embedding(len(ATTRIBUTES), 32), nn.Dropout(0.5))
            self.project_persons = _projection(32, d, 0.5)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.fusion = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, arch.encoder.h, arch.encoder.dff, arch.fusion_dropout, batch_first=True),
            num_layers=arch.encoder.L, enable_nested_tensor=False,
        )
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.Dropout(0.1), nn.Linear(d, n)) for name, n in heads.items()})
        patches = (clip.image_size // _patch_size(clip)) ** 2
        self.caption = (
            CaptionDecoder(d, arch, caption_vocab, caption_len, patches) if arch.caption and caption_vocab else None
        )

    def _typed(self, x: torch.Tensor, kind: int) -> torch.Tensor:
        return F.normalize(x + self.type_embedding.weight[kind], p=2, dim=-1)

    def encode(
        self, images: torch.Tensor, input_ids: torch.Tensor, attributes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, int]:
        """The fusion encoder's output [B, 1 + n_g + n_x (+ n_e), d] and n_g."""
        image, patches = self.features.image(images)
        text, tokens = self.features.text(input_ids)
        o_g = F.normalize(self.project_image(image), p=2, dim=-1)
        o_x = F.normalize(self.project_text(text), p=2, dim=-1)
        f_g = self._typed(self.project_patches(patches), PATCHES) * o_x[:, None]  # stage 1
        f_x = self._typed(self.project_tokens(tokens), TOKENS) * o_g[:, None]
        cls = F.normalize(self.cls, p=2, dim=-1).expand(images.shape[0], -1, -1)
        parts = [cls, f_g, f_x]
        padding = [torch.zeros(cls.shape[:2], dtype=torch.bool, device=images.device),
                   torch.zeros(f_g.shape[:2], dtype=torch.bool, device=images.device), input_ids == 0]
        if self.arch.external:
            if attributes is None:
                raise ValueError("this MemeFier takes demographic attributes")
            persons = self._typed(self.project_persons(self.person_embedding(attributes)), PERSONS)
            parts.append(persons)
            padding.append(attributes == 0)
        mask = torch.cat(padding, dim=1)
        # Text padding after the end-of-text token is masked; a person slot without a person too.
        return self.fusion(torch.cat(parts, dim=1), src_key_padding_mask=mask), f_g.shape[1]

    def forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attributes: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        fused, _ = self.encode(images, input_ids, attributes)
        return {name: head(fused[:, 0]) for name, head in self.heads.items()}

    def caption_logits(self, fused: torch.Tensor, patches: int, caption: torch.Tensor) -> torch.Tensor:
        if self.caption is None:
            raise ValueError("this MemeFier has no caption decoder")
        return self.caption(fused[:, 1 : 1 + patches], caption)


def _patch_size(clip: ClipFeatures) -> int:
    size = clip.clip.visual.patch_size
    return int(size if isinstance(size, int) else size[0])
