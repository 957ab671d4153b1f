"""Band modules: the band split that turns spectrum bands into tokens, and the per-band
mask estimators that turn tokens back into (complex) spectrum masks.

Per-band weights keep the community layout (`to_features.{b}`, `to_freqs.{b}`); the
computation runs as batched matmuls over runs of equally wide bands.
"""

from __future__ import annotations

import itertools
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import StackCache, Workspace, compute_dtype, unit_rows
from .transformer import RMSNorm


def runs(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive equal sizes."""
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(sizes) + 1):
        if i == len(sizes) or sizes[i] != sizes[start]:
            out.append((start, i))
            start = i
    return out


class BandSplit(nn.Module):
    """Per band: RMSNorm then Linear to `dim` (keys to_features.{b}.0.gamma, .1.weight/.bias)."""

    def __init__(self, dim: int, dim_inputs: tuple[int, ...]) -> None:
        super().__init__()
        self.dim_inputs = dim_inputs
        self.dim = dim
        self.to_features = nn.ModuleList(nn.Sequential(RMSNorm(d), nn.Linear(d, dim)) for d in dim_inputs)
        self._groups = runs(dim_inputs)
        self._stacked = StackCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., sum(dim_inputs)) -> (..., bands, dim): one batched matmul per run of
        equally wide bands, each band's norm gain folded into its weights."""
        lead, total = x.shape[:-1], x.shape[-1]
        cd = compute_dtype(x.device)
        rows = x.reshape(-1, total)
        out = torch.empty((len(self.dim_inputs), rows.shape[0], self.dim), dtype=cd, device=x.device)
        offset = 0
        for start, stop in self._groups:
            width = self.dim_inputs[start]
            nets = [cast(nn.Sequential, n) for n in self.to_features[start:stop]]
            norms = [cast(RMSNorm, net[0]) for net in nets]
            linears = [cast(nn.Linear, net[1]) for net in nets]

            def build(
                norms: list[RMSNorm] = norms, linears: list[nn.Linear] = linears
            ) -> tuple[torch.Tensor, ...]:
                return (
                    torch.stack([n.fold(lin.weight).t() for n, lin in zip(norms, linears, strict=True)]).to(
                        cd
                    ),
                    torch.stack([lin.bias for lin in linears]).unsqueeze(1).to(cd),
                )

            params = [
                p for n, lin in zip(norms, linears, strict=True) for p in (n.gamma, lin.weight, lin.bias)
            ]
            w, bias = self._stacked.get(start, cd, params, build)
            part = rows[:, offset : offset + (stop - start) * width].view(-1, stop - start, width)
            part = unit_rows(part, cd).transpose(0, 1)  # (bands, rows, width)
            torch.baddbmm(bias, part, w, out=out[start:stop])
            offset += (stop - start) * width
        return out.transpose(0, 1).reshape(*lead, len(self.dim_inputs), -1).to(x.dtype)


def mlp(dim_in: int, dim_out: int, dim_hidden: int, n_hidden: int) -> nn.Sequential:
    """Linear/Tanh stack with `n_hidden` hidden layers (keys 0, 2, 4, ... are the Linears)."""
    dims = (dim_in, *((dim_hidden,) * n_hidden), dim_out)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MaskEstimator(nn.Module):
    """Per band: MLP to 2x the band's inputs, then GLU (keys to_freqs.{b}.0.{k}.weight/bias).

    `n_hidden` is depth - 1 in BS-RoFormer and depth in Mel-Band RoFormer, as in the
    community code."""

    def __init__(
        self, dim: int, dim_inputs: tuple[int, ...], n_hidden: int, mlp_expansion_factor: int = 4
    ) -> None:
        super().__init__()
        self.dim_inputs = dim_inputs
        hidden = dim * mlp_expansion_factor
        self.to_freqs = nn.ModuleList(
            nn.Sequential(mlp(dim, d * 2, hidden, n_hidden), nn.GLU(dim=-1)) for d in dim_inputs
        )
        self._groups = runs(dim_inputs)
        self._stacked = StackCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., bands, dim) -> (..., sum(dim_inputs))."""
        *lead, bands, dim = x.shape
        cd = compute_dtype(x.device)
        x_bands = x.reshape(-1, bands, dim).transpose(0, 1).to(cd)
        return self.band_major(x_bands).reshape(*lead, -1).to(x.dtype)

    def _linears(self, index: int, start: int = 0, stop: int | None = None) -> list[nn.Linear]:
        """Layer `index` of the MLPs of bands [start, stop)."""
        nets = self.to_freqs[start:stop]
        return [cast(nn.Linear, cast(nn.Sequential, cast(nn.Sequential, net)[0])[index]) for net in nets]

    def band_major(self, x: torch.Tensor, ws: Workspace | None = None) -> torch.Tensor:
        """x: (bands, rows, dim) in compute dtype -> (rows, sum(dim_inputs)) in that dtype.
        The hidden layers (same shape for every band) run as one batched matmul over all
        bands, into `ws` buffers when given; the last layer and the GLU as one per run of
        equally wide bands."""
        cd = x.dtype
        ws = ws or Workspace()
        first = cast(nn.Sequential, cast(nn.Sequential, self.to_freqs[0])[0])
        n_layers = sum(isinstance(m, nn.Linear) for m in first)

        def stacked(key: object, linears: list[nn.Linear]) -> tuple[torch.Tensor, ...]:
            return self._stacked.get(
                key,
                cd,
                [p for m in linears for p in (m.weight, m.bias)],
                lambda: (
                    torch.stack([m.weight.t() for m in linears]).to(cd),
                    torch.stack([m.bias for m in linears]).unsqueeze(1).to(cd),
                ),
            )

        h = x
        for li in range(n_layers - 1):
            w, bias = stacked(li, self._linears(2 * li))
            out = ws.take(f"mask_hidden{li % 2}", (h.shape[0], h.shape[1], w.shape[-1]), cd, h.device)
            h = torch.baddbmm(bias, h, w, out=out).tanh_()
        last = 2 * (n_layers - 1)
        outs = []
        for start, stop in self._groups:
            w, bias = stacked(f"out{start}", self._linears(last, start, stop))
            y = F.glu(torch.baddbmm(bias, h[start:stop], w), dim=-1)  # (band, rows, d)
            outs.append(y.transpose(0, 1).flatten(1))
        return torch.cat(outs, dim=-1)


def run_mask_estimators(estimators: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """(b, t, bands, dim) -> float32 masks (b, stems, t, features); the band-major copy of x
    in compute dtype is made once for all stems."""
    b, t, bands, dim = x.shape
    x_bands = x.reshape(b * t, bands, dim).transpose(0, 1).to(compute_dtype(x.device))
    ws = Workspace()
    heads = [cast(MaskEstimator, est) for est in estimators]
    first = heads[0].band_major(x_bands, ws)
    out = torch.empty((b, len(heads), t, first.shape[-1]), dtype=x.dtype, device=x.device)
    out[:, 0] = first.view(b, t, -1)
    for i, est in enumerate(heads[1:], start=1):
        out[:, i] = est.band_major(x_bands, ws).view(b, t, -1)
    return out
