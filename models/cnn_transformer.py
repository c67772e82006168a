"""Transformers for CIFAR: a convolutional-stem hybrid and a plain ViT.

- ViT (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"): the image is cut into 4×4
  patches (64 tokens at 32×32), each linearly embedded; ``vit_tiny`` is ViT-Ti (dim 192, depth 12,
  3 heads, ~5M parameters).
- CNN-transformer (in the spirit of Xiao et al., 2021, "Early Convolutions Help Transformers See
  Better"): three 3×3 conv-BN-activation layers, two with stride 2, turn the image into an 8×8 grid
  of tokens. Convolutions bring the locality prior that a ViT must learn from data, which matters on
  a data set as small as CIFAR. ``cnn_transformer_small`` (dim 256, ~8M) and ``_base`` (dim 384, ~16M).

Both then run pre-norm encoder blocks (Xiong et al., 2020): ``x + Attention(LN(x))`` and
``x + MLP(LN(x))``, with a learnable positional embedding and a class token. Attention goes through
``F.scaled_dot_product_attention``, which picks a fused kernel (Flash/memory-efficient) when it can.

Shapes: (N, 3, H, W) → tokens (N, 1 + HW/p², D) → class token (N, D) → logits (N, num_classes).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import register_model
from models.activations import get_activation
from models.layers import ConvNormAct, ImageClassifier
from utils.regularization import drop_path, drop_path_rates


class Attention(nn.Module):
    """Multi-head self-attention. (N, T, D) → (N, T, D)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        assert dim % heads == 0, f"dim {dim} must be divisible by heads {heads}"
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def heads_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values: (N, T, D) → 3 × (N, heads, T, D/heads)."""
        n, t, d = x.shape
        return tuple(self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.heads_of(x)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(QKᵀ/√d)·V, fused where possible
        return self.proj(out.transpose(1, 2).reshape(n, t, d))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """softmax(QKᵀ/√d) (N, heads, T, T), the weights the fused kernel applies without forming them."""
        q, k, _ = self.heads_of(x)
        return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)


class TransformerBlock(nn.Module):
    """Pre-norm encoder block with stochastic depth on both residual branches. (N, T, D) → (N, T, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, activation: str, drop_path_rate: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), get_activation(activation), nn.Linear(hidden, dim))
        self.drop_path = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attention(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(ImageClassifier):
    """Tokenizer (given) → class token + positional embedding → encoder blocks → LayerNorm → head."""

    def __init__(self, tokenizer: nn.Module, num_tokens: int, *, dim: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0, num_classes: int = 10, activation: str = "gelu",
                 drop_path_rate: float = 0.0, pool: str = "cls") -> None:
        super().__init__()
        assert pool in ("cls", "mean"), "pool is 'cls' (class token) or 'mean' (average of the tokens)"
        self.tokenizer = tokenizer
        self.pool = pool
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, num_tokens + 1, dim))
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio, activation, rate)
                                      for rate in drop_path_rates(depth, drop_path_rate)])
        self.norm = nn.LayerNorm(dim)
        self.num_features = dim
        self.head = nn.Linear(dim, num_classes)
        self.apply(self._init_linear)

    def no_weight_decay(self) -> set[str]:
        """Embeddings are spared weight decay: they have no scale to over-fit with."""
        return {"cls_token", "pos_embedding"}

    @staticmethod
    def _init_linear(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x).flatten(2).transpose(1, 2)  # (N, D, h, w) → (N, h·w, D)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embedding
        return self.norm(self.blocks(tokens))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        pooled = features[:, 0] if self.pool == "cls" else features[:, 1:].mean(1)
        return self.head(pooled)


def _cnn_transformer(dim: int, depth: int, heads: int, *, image_size: int = 32, activation: str = "gelu",
                     **kwargs) -> VisionTransformer:
    assert image_size % 4 == 0, "the convolutional stem halves the image twice: image_size must be a multiple of 4"
    stem = nn.Sequential(
        ConvNormAct(3, dim // 4, 3, 1, activation=activation),
        ConvNormAct(dim // 4, dim // 2, 3, 2, activation=activation),
        ConvNormAct(dim // 2, dim, 3, 2, activation=activation),
    )
    return VisionTransformer(stem, (image_size // 4) ** 2, dim=dim, depth=depth, heads=heads,
                             activation=activation, **kwargs)


def _vit(dim: int, depth: int, heads: int, patch_size: int, *, image_size: int = 32, **kwargs) -> VisionTransformer:
    assert image_size % patch_size == 0, f"image_size must be a multiple of the patch size {patch_size}"
    patch_embedding = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)  # a linear map per patch
    return VisionTransformer(patch_embedding, (image_size // patch_size) ** 2, dim=dim, depth=depth,
                             heads=heads, **kwargs)


@register_model("transformer")
def cnn_transformer_small(**kwargs) -> VisionTransformer:
    return _cnn_transformer(dim=256, depth=9, heads=8, **kwargs)


@register_model("transformer")
def cnn_transformer_base(**kwargs) -> VisionTransformer:
    return _cnn_transformer(dim=384, depth=8, heads=8, **kwargs)


@register_model("transformer")
def vit_tiny(**kwargs) -> VisionTransformer:
    # Patches of 4 px at 32 px (64 tokens); scaled with the image so the token count stays 64.
    image_size = kwargs.get("image_size", 32)
    return _vit(dim=192, depth=12, heads=3, patch_size=max(4, image_size // 8), **kwargs)
