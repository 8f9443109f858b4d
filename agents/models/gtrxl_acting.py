"""The GTrXL's fast acting step: cached memory keys/values and parameters packed for one step.

Acting runs one query per stream per step, so its cost is per-op overhead plus streaming the
weights, not arithmetic. :class:`ActingPlan` holds, for one parameter version, the weights
pre-transposed for ``addmm`` and the per-step constants folded in:

* query ``q' = (q + u) / sqrt(dh)`` comes out of one ``addmm`` (scale in the weight, u in the
  bias), and ``(q + v) . R = (q + u) . R + (v - u) . R``, so
  ``score_j = q' . (k_j + R_j) + c_j`` with ``c = (v - u) . R / sqrt(dh)`` a per-version constant;
* the gate's ``- b_g`` is a bias of the ``W y`` product.

The plan is rebuilt whenever :meth:`GTrXL.cache_version` changes; it must agree with
``GTrXL.forward_sequence`` (tested to 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch


@dataclass
class GatePlan:
    """Packed :class:`~agents.models.gtrxl.GRUGate`."""

    w_t: torch.Tensor  # [D, 3D]: W_r, W_z, W_g transposed
    w_bias: torch.Tensor  # [3D]: 0, -b_g, 0
    u_rz_t: torch.Tensor  # [D, 2D]
    u_g_t: torch.Tensor  # [D, D]

    @classmethod
    def build(cls, gate) -> "GatePlan":
        d = gate.d_model
        bias = torch.zeros(3 * d, dtype=gate.gate_bias.dtype, device=gate.gate_bias.device)
        bias[d : 2 * d] = -gate.gate_bias
        return cls(
            gate.w.weight.t().contiguous(), bias, gate.u_rz.weight.t().contiguous(), gate.u_g.weight.t().contiguous()
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        wy_rz, wy_g = torch.addmm(self.w_bias, y, self.w_t).split((2 * d, d), dim=1)
        r, z = torch.addmm(wy_rz, x, self.u_rz_t).sigmoid_().split(d, dim=1)
        h = torch.addmm(wy_g, r * x, self.u_g_t).tanh_()
        return torch.lerp(x, h, z)


@dataclass
class LayerPlan:
    """Packed :class:`~agents.models.gtrxl.GTrXLLayer`."""

    num_heads: int
    head_dim: int
    ln_attn: Tuple[torch.Tensor, torch.Tensor, float]
    qkv_t: torch.Tensor  # [D, 3I], query columns scaled
    qkv_bias: torch.Tensor  # [3I]: u * scale, 0, 0
    rel: torch.Tensor  # [H, M + 1, dh] relative keys R_j, oldest first
    pos_const: torch.Tensor  # [H, 1, M + 1] (v - u) . R_j * scale
    out_t: torch.Tensor  # [I, D]
    gate_attn: GatePlan
    ln_mlp: Tuple[torch.Tensor, torch.Tensor, float]
    mlp: Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # W1^T, b1, W2^T, b2
    gate_mlp: GatePlan

    @classmethod
    def build(cls, layer, sinusoid: torch.Tensor) -> "LayerPlan":
        attn = layer.attn
        H, dh, inner = attn.num_heads, attn.head_dim, attn.num_heads * attn.head_dim
        qkv_t = attn.qkv.weight.t().contiguous()
        qkv_t[:, :inner] *= attn.scale
        qkv_bias = torch.zeros(3 * inner, dtype=qkv_t.dtype, device=qkv_t.device)
        qkv_bias[:inner] = attn.u.reshape(-1) * attn.scale
        rel = attn.relative_keys(sinusoid)  # [H, dh, M + 1]
        pos_const = torch.einsum("hd,hdm->hm", attn.v - attn.u, rel)[:, None] * attn.scale
        mlp_in, mlp_out = layer.mlp[0], layer.mlp[2]
        return cls(
            num_heads=H,
            head_dim=dh,
            ln_attn=(layer.ln_attn.weight, layer.ln_attn.bias, layer.ln_attn.eps),
            qkv_t=qkv_t,
            qkv_bias=qkv_bias,
            rel=rel.transpose(1, 2).contiguous(),
            pos_const=pos_const.contiguous(),
            out_t=attn.out.weight.t().contiguous(),
            gate_attn=GatePlan.build(layer.gate_attn),
            ln_mlp=(layer.ln_mlp.weight, layer.ln_mlp.bias, layer.ln_mlp.eps),
            mlp=(mlp_in.weight.t().contiguous(), mlp_in.bias, mlp_out.weight.t().contiguous(), mlp_out.bias),
            gate_mlp=GatePlan.build(layer.gate_mlp),
        )

    def step(self, x, cached_keys, cached_values, mask_bias):
        """``x [B, D]``, cached ``keys/values [B, H, M, dh]``, ``mask_bias [B, 1, 1, M + 1]``
        (0 or -inf) -> ``(out [B, D], keys, values [B, H, M + 1, dh])``."""
        B, D = x.shape
        H, dh = self.num_heads, self.head_dim
        w, b, eps = self.ln_attn
        qkv = torch.addmm(self.qkv_bias, torch.layer_norm(x, (D,), w, b, eps), self.qkv_t).view(B, 3, H, 1, dh)
        keys = torch.cat([cached_keys, qkv[:, 1]], dim=2)
        values = torch.cat([cached_values, qkv[:, 2]], dim=2)
        keys_pos = (keys + self.rel).view(B * H, -1, dh)
        bias = (mask_bias + self.pos_const).view(B * H, 1, -1)
        scores = torch.baddbmm(bias, qkv[:, 0].reshape(B * H, 1, dh), keys_pos.transpose(1, 2))
        attended = torch.bmm(torch.softmax(scores, dim=-1), values.view(B * H, -1, dh)).view(B, H * dh)
        x = self.gate_attn(x, torch.mm(attended, self.out_t).relu_())
        w, b, eps = self.ln_mlp
        w1, b1, w2, b2 = self.mlp
        hidden = torch.addmm(b1, torch.layer_norm(x, (D,), w, b, eps), w1).relu_()
        return self.gate_mlp(x, torch.addmm(b2, hidden, w2).relu_()), keys, values


class ActingPlan:
    """All layers' packed parameters for one parameter version of a :class:`GTrXL`."""

    def __init__(self, transformer, version: int):
        self.version = version
        with torch.no_grad():
            self.layers: List[LayerPlan] = [LayerPlan.build(ly, transformer.sinusoid) for ly in transformer.layers]

    def step(
        self, x: torch.Tensor, keys: Sequence[torch.Tensor], values: Sequence[torch.Tensor], visible: torch.Tensor
    ) -> Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """One step through all layers.

        Args:
            x: ``[B, D]`` embeddings.
            keys, values: per layer ``[B, H, M, dh]`` of the memory.
            visible: ``[B, M + 1]`` bool, the keys the query may attend to (memory, then itself).
        Returns:
            ``(features [B, D], layer inputs, keys, values)``; the latter per layer, keys and
            values ``[B, H, M, dh]`` of the shifted memory (oldest slot dropped).
        """
        mask_bias = torch.where(visible, 0.0, float("-inf")).to(x.dtype).view(x.shape[0], 1, 1, -1)
        inputs, new_keys, new_values = [], [], []
        for layer, k, v in zip(self.layers, keys, values):
            inputs.append(x)
            x, k, v = layer.step(x, k, v, mask_bias)
            new_keys.append(k[:, :, 1:])
            new_values.append(v[:, :, 1:])
        return x, inputs, new_keys, new_values
