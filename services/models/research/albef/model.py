"""ALBEF's image and text encoders with the published checkpoints' module names: `visual_encoder` is a timm
ViT (patch_embed, cls_token, pos_embed, blocks, norm — the names ALBEF's vit.py uses), `text_encoder` a
Hugging Face BertModel of 6 layers (ALBEF's xbert is BERT with cross-attention in layers 6–11, which the
unimodal text encoder never runs), `vision_proj`/`text_proj` the 256-d projections."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from transformers import BertConfig, BertModel

from services.models.research.albef.config import AlbefArchitecture


def bert_config(arch: AlbefArchitecture) -> BertConfig:
    config = BertConfig(
        vocab_size=arch.vocab_size, hidden_size=arch.text_width, num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads, intermediate_size=arch.text_intermediate,
        max_position_embeddings=arch.max_positions, layer_norm_eps=1e-12,
    )
    config._attn_implementation = "eager"  # plain matmul attention: exports to ONNX as it computes
    return config


class AlbefImageEncoder(nn.Module):
    """images [B, 3, R, R] (CLIP-normalised) → L2-normalised [B, embed_dim]."""

    def __init__(self, arch: AlbefArchitecture) -> None:
        super().__init__()
        self.visual_encoder = VisionTransformer(
            img_size=arch.image_res, patch_size=arch.patch_size, embed_dim=arch.vision_width, depth=arch.vision_depth,
            num_heads=arch.vision_heads, mlp_ratio=4, qkv_bias=True, num_classes=0, global_pool="token",
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
        )
        self.vision_proj = nn.Linear(arch.vision_width, arch.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        states = self.visual_encoder.forward_features(images)
        return F.normalize(self.vision_proj(states[:, 0]), dim=-1)


class AlbefTextEncoder(nn.Module):
    """input_ids, attention_mask [B, L] (BERT WordPiece, [CLS] first) → L2-normalised [B, embed_dim]."""

    def __init__(self, arch: AlbefArchitecture) -> None:
        super().__init__()
        self.text_encoder = BertModel(bert_config(arch), add_pooling_layer=False)
        self.text_proj = nn.Linear(arch.text_width, arch.embed_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(self.text_proj(states[:, 0]), dim=-1)


class AlbefEncoders(nn.Module):
    """Both towers and the ITC temperature, as one module whose state_dict keys match ALBEF's."""

    def __init__(self, arch: AlbefArchitecture) -> None:
        super().__init__()
        self.arch = arch
        self.image = AlbefImageEncoder(arch)
        self.text = AlbefTextEncoder(arch)
        self.temp = nn.Parameter(torch.tensor(arch.temperature))

    def itc_loss(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Image-text contrastive loss with in-batch negatives (ALBEF's ITC without its momentum queue)."""
        image, text = self.image(images), self.text(input_ids, attention_mask)
        logits = image @ text.T / self.temp.clamp(0.001, 0.5)
        targets = torch.arange(images.shape[0], device=images.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
