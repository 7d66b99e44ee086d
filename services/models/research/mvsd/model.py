"""MV-SD's network (source document 3.3.3, Figure 14). Shapes for an H × W frame (H, W multiples of 16):

encoder (T2T-ViT): soft split k=7, overlap 3, pad 2 → token transformer → T1 [H/4·W/4, c]; soft split
  k=3, overlap 1, pad 1 → token transformer → T2 [H/8·W/8, c]; soft split k=3/1/1 → linear c·9 → d → ViT
  blocks → T3 [H/16·W/16, d].
temporal module: divided space-time attention over the clip's T3 tokens (time, then space, then MLP).
decoder: a saliency token joins T3 in Transformer blocks; RT2T (k=3, overlap 1, pad 1) up to 1/8, fused
  with T2 by concatenation + linear to c, token transformer with the saliency token; the same up to 1/4
  with T1; RT2T k=7, overlap 3, pad 3 up to H × W; patch-saliency attention between the pixels' tokens
  and the saliency token, two linear layers and a sigmoid give the map in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from services.models.research.mvsd.config import MvsdArchitecture
from services.models.research.mvsd.tokens import (
    Attention,
    Block,
    Mlp,
    ReverseSoftSplit,
    SoftSplit,
    TokenTransformer,
    sinusoid_2d,
)

# (kernel, overlap, padding) of the three soft splits and of the three reverse soft splits.
SOFT_SPLITS = ((7, 3, 2), (3, 1, 1), (3, 1, 1))
REVERSE_SPLITS = ((3, 1, 1), (3, 1, 1), (7, 3, 3))


class T2TEncoder(nn.Module):
    def __init__(self, arch: MvsdArchitecture) -> None:
        super().__init__()
        c, d = arch.channels, arch.dim
        (k0, o0, p0), (k1, o1, p1), (k2, o2, p2) = SOFT_SPLITS
        self.split0 = SoftSplit(3, k0, o0, p0)
        self.split1 = SoftSplit(c, k1, o1, p1)
        self.split2 = SoftSplit(c, k2, o2, p2)
        self.t2t1 = TokenTransformer(3 * k0 * k0, c)
        self.t2t2 = TokenTransformer(c * k1 * k1, c)
        self.project = nn.Linear(c * k2 * k2, d)
        side = arch.image_size // 16
        self.register_buffer("position", sinusoid_2d(side, side, d), persistent=False)
        self.blocks = nn.Sequential(*(Block(d, arch.heads, arch.mlp_ratio) for _ in range(arch.encoder_depth)))
        self.norm = nn.LayerNorm(d)

    @staticmethod
    def _image(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *grid)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
        """frames [N, 3, H, W] → (T1, T2, T3, T3's grid)."""
        tokens, grid1 = self.split0(frames)
        t1 = self.t2t1(tokens)
        tokens, grid2 = self.split1(self._image(t1, grid1))
        t2 = self.t2t2(tokens)
        tokens, grid3 = self.split2(self._image(t2, grid2))
        t3 = self.norm(self.blocks(self.project(tokens) + self.position))
        return t1, t2, t3, grid3


class DividedSpaceTimeBlock(nn.Module):
    """TimeSformer's divided attention: each patch attends over the same patch in every frame, then over
    every patch of its own frame; then the MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.time_norm, self.time_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.space_norm, self.space_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.mlp_norm, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, patches, dim = x.shape
        in_time = x.transpose(1, 2).reshape(batch * patches, frames, dim)
        in_time = in_time + self.time_attn(self.time_norm(in_time))
        in_space = in_time.reshape(batch, patches, frames, dim).transpose(1, 2).reshape(batch * frames, patches, dim)
        in_space = in_space + self.space_attn(self.space_norm(in_space))
        out = in_space + self.mlp(self.mlp_norm(in_space))
        return out.reshape(batch, frames, patches, dim)


class TemporalModule(nn.Module):
    def __init__(self, arch: MvsdArchitecture) -> None:
        super().__init__()
        self.time = nn.Parameter(torch.zeros(1, arch.max_frames, 1, arch.dim))
        nn.init.trunc_normal_(self.time, std=0.02)
        self.blocks = nn.ModuleList(
            DividedSpaceTimeBlock(arch.dim, arch.heads, arch.mlp_ratio) for _ in range(arch.temporal_depth)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, T, L, d] → [B, T, L, d]."""
        x = tokens + self.time[:, : tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return x


class DecoderStage(nn.Module):
    """RT2T up one level, fusion with the encoder's tokens of that level, token transformers with the
    saliency token."""

    def __init__(self, dim_in: int, channels: int, split: tuple[int, int, int], depth: int, heads: int) -> None:
        super().__init__()
        kernel, overlap, padding = split
        self.norm = nn.LayerNorm(dim_in)
        self.reduce = nn.Linear(dim_in, channels) if dim_in != channels else nn.Identity()
        self.expand = nn.Linear(channels, channels * kernel * kernel)
        self.fold = ReverseSoftSplit(channels, kernel, overlap, padding)
        self.fuse = nn.Linear(2 * channels, channels)
        self.token_in = nn.Linear(dim_in, channels) if dim_in != channels else nn.Identity()
        self.blocks = nn.Sequential(*(TokenTransformer(channels, channels, heads) for _ in range(depth)))

    def forward(
        self, patches: torch.Tensor, saliency: torch.Tensor, grid: tuple[int, int], skip: torch.Tensor,
        size: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        up = self.fold(self.expand(self.reduce(self.norm(patches))), grid, size)
        up_tokens = up.flatten(2).transpose(1, 2)
        fused = self.fuse(torch.cat([up_tokens, skip], dim=2))
        out = self.blocks(torch.cat([self.token_in(saliency), fused], dim=1))
        return out[:, 1:], out[:, :1]


class PatchSaliencyAttention(nn.Module):
    """Each pixel token queries the saliency token (one key, so a sigmoid gate), the gated value joins the
    token; two linear layers and a sigmoid give that pixel's saliency."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm_patch, self.norm_token = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.q, self.k, self.v = (nn.Linear(channels, channels) for _ in range(3))
        self.proj = nn.Linear(channels, channels)
        self.head = nn.Sequential(nn.Linear(channels, channels), nn.GELU(), nn.Linear(channels, 1))
        self.scale = channels**-0.5

    def forward(self, patches: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        p, s = self.norm_patch(patches), self.norm_token(saliency)
        gate = torch.sigmoid((self.q(p) * self.k(s)).sum(-1, keepdim=True) * self.scale)
        x = patches + self.proj(gate * self.v(s))
        return torch.sigmoid(self.head(x)).squeeze(-1)


class RT2TDecoder(nn.Module):
    def __init__(self, arch: MvsdArchitecture) -> None:
        super().__init__()
        c, d = arch.channels, arch.dim
        self.token = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.token, std=0.02)
        self.blocks = nn.Sequential(*(Block(d, arch.heads, arch.mlp_ratio) for _ in range(arch.decoder_depth)))
        self.stage8 = DecoderStage(d, c, REVERSE_SPLITS[0], arch.decoder_stage_depth, arch.decoder_heads)
        self.stage4 = DecoderStage(c, c, REVERSE_SPLITS[1], arch.decoder_stage_depth, arch.decoder_heads)
        kernel, overlap, padding = REVERSE_SPLITS[2]
        self.final_norm = nn.LayerNorm(c)
        self.final_expand = nn.Linear(c, c * kernel * kernel)
        self.final_fold = ReverseSoftSplit(c, kernel, overlap, padding)
        self.final_token = nn.Linear(c, c)
        self.readout = PatchSaliencyAttention(c)

    def forward(self, t1: torch.Tensor, t2: torch.Tensor, t3: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Per frame: encoder tokens → saliency map [N, H, W] in [0, 1]."""
        height, width = size
        x = self.blocks(torch.cat([self.token.expand(t3.shape[0], -1, -1), t3], dim=1))
        saliency, patches = x[:, :1], x[:, 1:]
        patches, saliency = self.stage8(patches, saliency, (height // 16, width // 16), t2, (height // 8, width // 8))
        patches, saliency = self.stage4(patches, saliency, (height // 8, width // 8), t1, (height // 4, width // 4))
        full = self.final_fold(self.final_expand(self.final_norm(patches)), (height // 4, width // 4), size)
        pixels = full.flatten(2).transpose(1, 2)
        return self.readout(pixels, self.final_token(saliency)).reshape(-1, height, width)


class MVSD(nn.Module):
    """frames [B, T, 3, H, W] (ImageNet-normalised RGB) → saliency [B, T, H, W] in [0, 1]."""

    def __init__(self, arch: MvsdArchitecture) -> None:
        super().__init__()
        self.arch = arch
        self.encoder = T2TEncoder(arch)
        self.temporal = TemporalModule(arch)
        self.decoder = RT2TDecoder(arch)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, count, _, height, width = frames.shape
        t1, t2, t3, _ = self.encoder(frames.flatten(0, 1))
        t3 = self.temporal(t3.reshape(batch, count, *t3.shape[1:])).flatten(0, 1)
        maps = self.decoder(t1, t2, t3, (height, width))
        return maps.reshape(batch, count, height, width)
