"""How much of a transposed-conv model survives conversion to resize + conv: the question behind every
resize + conv fine-tune of the release.

    python scripts/upsampler_conversion.py [--checkpoint ir2vis_stream/weights/default.pt] [--images 16]

A 4x4 stride-2 transposed conv computes four different 2x2 kernels, one per output phase; a bilinear resize +
3x3 conv computes one kernel for all four, so it can keep only the part of the transposed conv's output that
is the same in every phase. Two conversions are measured, on training crops at short side 256 (eager fp32):

- *kernel fit*: ``model.resize_conv_state``, what ``train --init`` uses: each kernel's least-squares fit;
- *activation fit*: coarse level to fine, each 3x3 conv (with bias) solved by least squares against the
  transposed conv's own output on the real features that reach it (earlier levels already converted), and the
  instance norm's gain that follows scaled by how well the fit correlates with the original.

For each level it prints the per-channel correlation of the fitted and the original output (1.0: the
conversion keeps the layer; what is missing is phase-dependent, i.e. the checkerboard), and for each model the
PSNR against the visible images and against the original model's output on held-out pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ir2vis_stream import metrics
from ir2vis_stream.checkpoint import load_checkpoint
from ir2vis_stream.frames import model_to_rgb8
from ir2vis_stream.model import build_generator, generator_spec, resize_conv_state
from ir2vis_stream.train.data import AspectCrop, PairedImages, find_pairs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = [SHARED / d for d in ("roadscene", "msrs", "m3svd", "msrs_full", "m3svd_dusk")]


def rgb8(y: torch.Tensor) -> torch.Tensor:
    return model_to_rgb8(y).permute(0, 3, 1, 2).float()


def psnrs(model, reference, pairs) -> tuple[float, float]:
    """Mean PSNR of ``model`` against the visible images and against ``reference``'s outputs."""
    vis_db, ref_db = [], []
    for ir, vis in pairs:
        out = rgb8(model(ir[None]))
        vis_db.append(metrics.psnr(out, rgb8(vis[None])).item())
        ref_db.append(metrics.psnr(out, rgb8(reference(ir[None]))).item())
    return float(np.mean(vis_db)), float(np.mean(ref_db))


def up_io(model, images: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The features entering ``levels[level].up`` and its upsampler's output (before the instance norm)."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = model.levels[level].up[0].register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
    try:
        for batch in images.split(4):
            model(batch)
    finally:
        hook.remove()
    return torch.cat([s[0] for s in seen]), torch.cat([s[1] for s in seen])


def fit_level(student, teacher, images: torch.Tensor, level: int, pixels: int = 16384) -> float:
    """Solve the student's 3x3 conv at ``level`` against the teacher's transposed conv; mean correlation."""
    _, target = up_io(teacher, images, level)
    feats, _ = up_io(student, images, level)
    up = F.interpolate(feats.double(), scale_factor=2.0, mode="bilinear", align_corners=False)
    n, c, h, w = up.shape
    ata = torch.zeros(c * 9 + 1, c * 9 + 1, dtype=torch.float64)
    aty = torch.zeros(c * 9 + 1, c, dtype=torch.float64)
    gen = torch.Generator().manual_seed(level)
    for k in range(n):  # normal equations over a random sample of each image's pixels
        pick = torch.randperm(h * w, generator=gen)[:pixels]
        cols = F.unfold(up[k:k + 1], 3, padding=1)[0][:, pick]
        a = torch.cat([cols, torch.ones(1, len(pick), dtype=torch.float64)]).T
        ata += a.T @ a
        aty += a.T @ target[k].double().reshape(c, -1)[:, pick].T
    ridge = 1e-6 * ata.diagonal().mean() * torch.eye(len(ata), dtype=torch.float64)
    solution = torch.linalg.solve(ata + ridge, aty)
    conv = student.levels[level].up[0][1]
    conv.weight.copy_(solution[:-1].T.reshape(c, c, 3, 3))
    conv.bias.copy_(solution[-1])
    fitted = F.conv2d(up.float(), conv.weight, conv.bias, padding=1)
    z = lambda t: (t - t.mean((2, 3), keepdim=True)) / t.std((2, 3), keepdim=True).clamp_min(1e-5)  # noqa: E731
    corr = (z(fitted) * z(target)).mean((2, 3)).mean(0)  # per channel, averaged over images
    student.levels[level].up[1].weight.mul_(corr.clamp(0, 1))  # the best gain for a normalised, partial fit
    return float(corr.mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="ir2vis_stream/weights/default.pt")
    ap.add_argument("--images", type=int, default=16, help="training crops the activation fit sees")
    ap.add_argument("--heldout", type=int, default=24, help="held-out pairs scored")
    args = ap.parse_args(argv)
    if not all(d.is_dir() for d in DATA):
        print(f"needs the data folders under {SHARED}", file=sys.stderr)
        return 1
    torch.set_grad_enabled(False)
    train, val = find_pairs(DATA, heldout_prefixes=("0115_1847_",))
    policy = AspectCrop(256, 256, upscale=True)
    train_set, val_set = PairedImages(train, policy, train=True, seed=0), PairedImages(val, policy, train=False)
    train_set.set_epoch(0)
    pick = np.random.RandomState(0).choice(len(train_set), args.images, replace=False)
    images = torch.stack([train_set[i][0] for i in pick])
    heldout = [val_set[i] for i in range(min(args.heldout, len(val_set)))]

    teacher = load_checkpoint(args.checkpoint).model.eval()
    if teacher.config.up != "tconv":
        print(f"{args.checkpoint} has up={teacher.config.up!r}: nothing to convert", file=sys.stderr)
        return 1
    config = {**generator_spec(teacher)["config"], "up": "resize-conv"}
    student = build_generator("msp", **config).eval()
    student.load_state_dict(resize_conv_state(teacher.state_dict()))

    print("model | PSNR vs visible | PSNR vs the original")
    print("original | %.2f | -" % psnrs(teacher, teacher, heldout)[0])
    print("kernel fit (train --init) | %.2f | %.2f" % psnrs(student, teacher, heldout))
    for level in sorted((i for i, lv in enumerate(student.levels) if lv.up is not None), reverse=True):
        corr = fit_level(student, teacher, images, level)
        print(f"  level {level} ({2 ** level}x below full size): fitted vs original output, correlation {corr:.3f}")
    print("activation fit | %.2f | %.2f" % psnrs(student, teacher, heldout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
