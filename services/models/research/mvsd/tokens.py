"""Token building blocks of MV-SD: soft split (T2T) and its reverse (RT2T) as fixed one-hot grouped
convolutions (exactly `nn.Unfold`/`nn.Fold`, but exportable to ONNX opset 17, which has no Col2Im),
the T2T token transformer, a pre-norm ViT block and 2-D sinusoidal position embeddings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _one_hot_kernels(channels: int, kernel: int) -> torch.Tensor:
    """[channels·k², 1, k, k]: output channel c·k² + i·k + j picks pixel (i, j) of input channel c."""
    eye = torch.eye(kernel * kernel).reshape(kernel * kernel, 1, kernel, kernel)
    return eye.repeat(channels, 1, 1, 1)


class SoftSplit(nn.Module):
    """Overlapping k × k patches with stride k − overlap and zero padding, as tokens [B, L, C·k²]
    (channel-major within a token, as `nn.Unfold` orders them)."""

    def __init__(self, channels: int, kernel: int, overlap: int, padding: int) -> None:
        super().__init__()
        self.channels, self.kernel, self.stride, self.padding = channels, kernel, kernel - overlap, padding
        self.register_buffer("weight", _one_hot_kernels(channels, kernel), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        patches = F.conv2d(image, self.weight, stride=self.stride, padding=self.padding, groups=self.channels)
        height, width = patches.shape[-2:]
        return patches.flatten(2).transpose(1, 2), (height, width)


class ReverseSoftSplit(nn.Module):
    """Folds tokens [B, h·w, C·k²] back into an image [B, C, H, W], summing where patches overlap
    (`nn.Fold`); (H, W) is the size a soft split with the same k, overlap and padding maps to (h, w)."""

    def __init__(self, channels: int, kernel: int, overlap: int, padding: int) -> None:
        super().__init__()
        self.channels, self.kernel, self.stride, self.padding = channels, kernel, kernel - overlap, padding
        self.register_buffer("weight", _one_hot_kernels(channels, kernel), persistent=False)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        height, width = grid
        image = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
        natural = [(n - 1) * self.stride - 2 * self.padding + self.kernel for n in (height, width)]
        extra = [target - got for target, got in zip(size, natural, strict=True)]
        if not all(0 <= e < self.stride for e in extra):
            raise ValueError(f"cannot fold a {grid} token grid into {size} with stride {self.stride}")
        return F.conv_transpose2d(
            image, self.weight, stride=self.stride, padding=self.padding, output_padding=tuple(extra),
            groups=self.channels,
        )


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out or dim))


class Attention(nn.Module):
    """Multi-head self-attention (scaled dot product) from `dim` to `out` features."""

    def __init__(self, dim: int, heads: int, out: int | None = None) -> None:
        super().__init__()
        out = out or dim
        if out % heads:
            raise ValueError(f"{out} features do not split into {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * out)
        self.proj = nn.Linear(out, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(batch, length, -1))


class Block(nn.Module):
    """Pre-norm Transformer block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 3.0) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenTransformer(nn.Module):
    """T2T's re-structurization T' = MLP(MSA(T)) that also maps token width `dim` to `out` (the attention's
    values carry the skip connection, since the widths differ)."""

    def __init__(self, dim: int, out: int, heads: int = 1, mlp_ratio: float = 1.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * out)
        self.proj = nn.Linear(out, out)
        self.norm2, self.mlp = nn.LayerNorm(out), Mlp(out, int(out * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, length, -1)
        x = v.transpose(1, 2).reshape(batch, length, -1) + self.proj(y)
        return x + self.mlp(self.norm2(x))


def sinusoid_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """[1, height·width, dim] fixed position embeddings: half the features encode the row, half the column."""
    if dim % 4:
        raise ValueError(f"2-D sinusoidal embeddings need a width divisible by 4, got {dim}")
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, dtype=torch.float32) / quarter)
    rows = torch.arange(height, dtype=torch.float32)[:, None] * freq
    cols = torch.arange(width, dtype=torch.float32)[:, None] * freq
    row = torch.cat([rows.sin(), rows.cos()], 1)[:, None, :].expand(height, width, 2 * quarter)
    col = torch.cat([cols.sin(), cols.cos()], 1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([row, col], 2).reshape(1, height * width, dim)
