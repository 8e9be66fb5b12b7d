"""Removing the up-sampling grid from a generator's output (``run --grid-filter``; on for the paper's model).

The paper's generator enlarges its features 2x three times with 4x4 stride-2 transposed convolutions and adds
nearest-upsampled level images, so its output carries a faint pattern that repeats every 8 inference pixels
(Odena et al. 2016; its grid measure, where 1.0 is a real image's, is well above 1: docs/pictures.md). A
grid-free up-sampler has to be trained from scratch (the release's finer levels use the pattern as signal), so
this filter removes it from the output instead. It is a local notch filter at the grid's harmonics:

1. ``low``: the mean over one period (a ``period`` x ``period`` box) has a zero at every harmonic of the
   period, so ``low`` holds no grid; ``high = y - low`` holds the grid and the image's fine detail.
2. the grid is what ``high`` has in common at the same phase (row mod p, column mod p) of nearby periods:
   for each of the p x p phases, the median of ``high`` at that phase over the 5 x 5 periods around each one
   (a 40 x 40 pixel neighbourhood at period 8; separable: the median of 5 along rows, then along columns), less
   the mean over all phases.
3. ``y - grid``.

The median, not the mean: a straight edge lies at one phase along its whole length, so it is one of the 5
columns (or rows) of periods that each phase's estimate sees; a mean would take a fifth of the edge for grid and
subtract it again 8 and 16 pixels away (echoes), the median ignores it. Detail that does not repeat with the
grid's phase is kept, and a linear ramp leaves no estimate (step 1 takes it out whole). What goes with the
artefact is real content that repeats at exactly the grid's period and phase over the neighbourhood. On
held-out pairs the grid measure falls to about a real image's (measured: docs/pictures.md). Cost: a box filter
and two medians of 5, small beside the model's own time per frame (measured: docs/performance.md).

Works on any float ``(N, C, H, W)`` batch at inference size, on any device; the model's own input is not
needed. Which models need it: ``grid_period`` (the model says).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["grid_period", "remove_grid"]


def grid_period(model, enabled: bool = True) -> int | None:
    """The period (inference pixels) of the grid to take out of ``model``'s output: its own ``grid_period``
    (``MultiScaleGenerator``: 8 for the paper's transposed convolutions, None for resize + conv), None for a
    module that declares none, or when not ``enabled`` (``--no-grid-filter``)."""
    return getattr(model, "grid_period", None) if enabled else None


def remove_grid(y: torch.Tensor, period: int = 8) -> torch.Tensor:
    """``y`` (N, C, H, W) float less its part that repeats every ``period`` pixels (see the module docstring),
    in float32. Sides are extended (replicated) to whole periods for the filter and cropped back; an image
    fewer than 3 periods high or wide, where a median of 5 periods cannot outvote the border, is returned as it is."""
    n, c, h, w = y.shape
    rows, cols = -(-h // period), -(-w // period)
    if rows < 3 or cols < 3:
        return y.float().clone()
    x = F.pad(y.float(), (0, cols * period - w, 0, rows * period - h), mode="replicate")
    # 1. one period's mean holds no grid (at the borders, where the box reaches past the image, the first and last
    # periods' ``high`` is not the image's: step 2 outvotes them)
    left, right = (period - 1) // 2, period // 2
    high = x - F.avg_pool2d(F.pad(x, (left, right, left, right), mode="replicate"), period, stride=1)
    # 2. per phase: (N, C * p * p, rows, cols), each channel one phase's samples, then their local median
    phases = high.reshape(n, c, rows, period, cols, period).permute(0, 1, 3, 5, 2, 4)
    del high
    local = _median5(_median5(phases.reshape(n, c * period**2, rows, cols), dim=3), dim=2)
    local = local.reshape(n, c, period * period, rows, cols)
    local = local - local.mean(dim=2, keepdim=True)  # the periodic part only: no phase-independent offset
    grid = local.reshape(n, c, period, period, rows, cols).permute(0, 1, 4, 2, 5, 3)
    # 3.
    return (x - grid.reshape(n, c, rows * period, cols * period))[..., :h, :w]


def _median5(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The median of each 5 neighbours along ``dim`` (2 or 3 of an (N, C, H, W) tensor, at least 3 long): six
    min/max of whole tensors (a known network: the median of ``e`` and the two middle candidates of ``a``..``d``),
    not a sort. Borders are mirrored without repeating the end sample, so the first period's median is that of
    itself and two copies each of the next two: its own (unreliable) value is outvoted."""
    pad = (2, 2, 0, 0) if dim == 3 else (0, 0, 2, 2)
    t = F.pad(t, pad, mode="reflect")
    size = t.shape[dim] - 4
    a, b, c, d, e = (t.narrow(dim, i, size) for i in range(5))
    low = torch.maximum(torch.minimum(a, b), torch.minimum(c, d))
    high = torch.minimum(torch.maximum(a, b), torch.maximum(c, d))
    return torch.maximum(torch.minimum(e, low), torch.minimum(torch.maximum(e, low), high))
