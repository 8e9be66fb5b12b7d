"""Paired IR/visible training data: discovery, validation, the held-out split and the augmentation policy.

A *sequence* is a folder holding ``lwir/`` and ``visible/`` with images of matching names (KAIST's
``setXX/VYYY/``, or RoadScene/MSRS-style folders). Each data root given to training is searched
recursively for sequences. Within each sequence, pairs are natural-sorted and every 10th one (index 9, 19,
...) is held out for validation, as in the paper. Where a sequence holds consecutive video frames, every 10th
frame has its neighbours in training and a held-out figure flatters the model; ``heldout_prefixes`` then
holds out whole clips instead: in a sequence where some names start with one of the prefixes, exactly those
pairs are held out (and no others).

Augmentation policies (the same geometry is applied to both images of a pair):

- ``AspectCrop(scale, crop)`` (default 256, 256): scale so the short side is ``scale x U(1, 1.25)``, keeping
  the aspect ratio, take a random ``crop x crop`` window, flip left-right with p = 0.5. Objects are seen at
  the scale they have when a whole frame is resized to short side ``scale``, which is how ``run`` feeds
  video to the model, whatever the video's aspect. A crop smaller than the scale trains faster
  (cost ~ crop^2) without changing that object scale. ``upscale=False`` never enlarges an image: one whose
  short side is below ``scale`` is cropped at its own size (its targets stay sharp; its objects are smaller).
- ``MultiScaleCrop(min_scale, crop)`` (``--multi-scale``): each sample's short side drawn between
  ``min_scale`` and its own, then a ``crop x crop`` window: one model for every size it runs at.
- ``FixedResize(w, h)`` (``--resize WxH``, the paper's 256x256): resize to exactly w x h, flip.

Held-out images are resized to short side ``scale`` (aspect kept, sides multiples of 8), or to w x h.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, UserError
from ..frames import IMAGE_EXTENSIONS, gray8_to_model, natural_key, read_image, resize, rgb8_to_model, short_side_size, to_gray8

HOLDOUT_EVERY = 10


class DataError(UserError, ValueError):
    """Training data that cannot be used; the message lists what is wrong."""


@dataclass(frozen=True)
class Pair:
    ir: Path
    visible: Path
    root: str  # the data root it was found under, for per-folder metrics


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}


def find_sequences(root: Path) -> list[Path]:
    """Folders under (or equal to) ``root`` that hold both ``lwir/`` and ``visible/``, sorted."""
    candidates = [root] + sorted((p for p in root.rglob("lwir") if p.is_dir()), key=lambda p: natural_key(str(p)))
    seqs = []
    for c in candidates:
        seq = c if c == root else c.parent
        if (seq / "lwir").is_dir() and (seq / "visible").is_dir() and seq not in seqs:
            seqs.append(seq)
    return seqs


def find_pairs(roots: list[str | Path], check_sizes: bool = True,
               heldout_prefixes: tuple[str, ...] = ()) -> tuple[list[Pair], list[Pair]]:
    """All (train, held-out) pairs under ``roots``; DataError listing every problem found.

    Held out: every 10th pair of each sequence, or, in a sequence with names starting with one of
    ``heldout_prefixes``, exactly those (whole clips; see the module docstring)."""
    heldout_prefixes = tuple(heldout_prefixes)
    from PIL import Image  # header-only reads: sizes without decoding

    problems: list[str] = []
    train: list[Pair] = []
    held: list[Pair] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            problems.append(f"{root}: not a folder")
            continue
        seqs = find_sequences(root)
        if not seqs:
            problems.append(f"{root}: no lwir/ + visible/ folders found (expected setXX/VYYY/{{lwir,visible}}/ or lwir/ and visible/)")
            continue
        n_root = 0
        for seq in seqs:
            ir, vis = _images(seq / "lwir"), _images(seq / "visible")
            only_ir, only_vis = sorted(set(ir) - set(vis)), sorted(set(vis) - set(ir))
            if only_ir:
                problems.append(f"{seq}: {len(only_ir)} lwir image(s) without a visible match, e.g. {', '.join(only_ir[:3])}")
            if only_vis:
                problems.append(f"{seq}: {len(only_vis)} visible image(s) without an lwir match, e.g. {', '.join(only_vis[:3])}")
            names = sorted(set(ir) & set(vis), key=natural_key)
            by_clip = bool(heldout_prefixes) and any(n.startswith(heldout_prefixes) for n in names)
            for i, name in enumerate(names):
                pair = Pair(ir[name], vis[name], str(root))
                if check_sizes:
                    try:
                        with Image.open(pair.ir) as a, Image.open(pair.visible) as b:
                            if a.size != b.size:
                                problems.append(f"{seq}/{{lwir,visible}}/{name}: sizes differ ({a.size[0]}x{a.size[1]} vs {b.size[0]}x{b.size[1]})")
                                continue
                    except Exception as exc:  # PIL raises many types for broken files
                        problems.append(f"{seq}: unreadable image in pair {name} ({type(exc).__name__})")
                        continue
                is_held = name.startswith(heldout_prefixes) if by_clip else i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
                (held if is_held else train).append(pair)
                n_root += 1
        if n_root == 0 and not any(p.startswith(str(root)) for p in problems):
            problems.append(f"{root}: no image pairs found")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise DataError("bad training data:\n  " + "\n  ".join(shown))
    return train, held


@dataclass(frozen=True)
class AspectCrop:
    scale: int = 256
    crop: int = 256
    max_zoom: float = 1.25
    upscale: bool = True

    def __post_init__(self):
        if self.crop > self.scale:
            raise ConfigError(f"crop {self.crop} is larger than the scale {self.scale} (short side)")

    def train(self, ir: np.ndarray, vis: np.ndarray, rng: np.random.Generator):
        h, w = ir.shape[:2]
        s = self.scale / min(h, w) * rng.uniform(1.0, self.max_zoom)
        if not self.upscale:
            if min(h, w) < self.crop:
                raise DataError(f"{w}x{h} images are smaller than the {self.crop}x{self.crop} crop, and upscaling is off")
            s = min(s, 1.0)
        nw, nh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
        ir, vis = resize(ir, nw, nh), resize(vis, nw, nh)
        y, x = rng.integers(0, nh - self.crop + 1), rng.integers(0, nw - self.crop + 1)
        return ir[y:y + self.crop, x:x + self.crop], vis[y:y + self.crop, x:x + self.crop]

    def eval_size(self, width: int, height: int) -> tuple[int, int]:
        return short_side_size(width, height, self.scale)

    def describe(self) -> dict:
        return {"short_side": self.scale}


@dataclass(frozen=True)
class MultiScaleCrop:
    """Each sample at a scale of its own: short side drawn uniformly between ``min_scale`` and the image's own
    short side (never enlarged beyond it; an image smaller than ``min_scale`` is enlarged to it), then a random
    ``crop x crop`` window. One model so learns objects at every size it will run at, from 344x256 to a
    640x480 frame's own; the crop keeps the cost of a step fixed. Held-out images are scored at their own
    size (sides multiples of 8), where the structure a viewer sees is."""

    min_scale: int = 256
    crop: int = 256

    def __post_init__(self):
        if self.crop > self.min_scale:
            raise ConfigError(f"crop {self.crop} is larger than the smallest scale {self.min_scale} (short side)")

    def train(self, ir: np.ndarray, vis: np.ndarray, rng: np.random.Generator):
        h, w = ir.shape[:2]
        short = min(h, w)
        target = rng.uniform(self.min_scale, max(self.min_scale, short))
        s = target / short
        nw, nh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
        if (nw, nh) != (w, h):
            ir, vis = resize(ir, nw, nh), resize(vis, nw, nh)
        y, x = rng.integers(0, nh - self.crop + 1), rng.integers(0, nw - self.crop + 1)
        return ir[y:y + self.crop, x:x + self.crop], vis[y:y + self.crop, x:x + self.crop]

    def eval_size(self, width: int, height: int) -> tuple[int, int]:
        return short_side_size(width, height, max(self.min_scale, min(width, height)))

    def describe(self) -> dict:
        # short_side: the inference size a checkpoint defaults to (the fast end); multi_scale: what it learnt
        return {"short_side": self.min_scale, "multi_scale": [self.min_scale, "own"]}


@dataclass(frozen=True)
class FixedResize:
    width: int = 256
    height: int = 256

    def train(self, ir, vis, rng):
        return resize(ir, self.width, self.height), resize(vis, self.width, self.height)

    def eval_size(self, width: int, height: int) -> tuple[int, int]:
        return self.width, self.height

    def describe(self) -> dict:
        return {"size": [self.width, self.height]}


class PairedImages(Dataset):
    """Pairs as tensors: IR (1, H, W) and visible RGB (3, H, W), both in [-1, 1].

    Training augmentation is seeded by (seed, epoch, index), so a resumed run sees exactly the samples
    the uninterrupted run would have seen; call ``set_epoch`` before each epoch.
    """

    def __init__(self, pairs: list[Pair], policy, train: bool, seed: int = 0):
        self.pairs, self.policy, self.is_train, self.seed = pairs, policy, train, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pairs[index]
        try:
            return to_gray8(read_image(pair.ir)), read_image(pair.visible, color=True)
        except ValueError as exc:  # an image that passed the header check but does not decode
            raise DataError(str(exc)) from None

    def __getitem__(self, index: int):
        ir, vis = self.load(index)
        if self.is_train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            ir, vis = self.policy.train(ir, vis, rng)
            if rng.random() < 0.5:
                ir, vis = ir[:, ::-1], vis[:, ::-1]
        else:
            w, h = self.policy.eval_size(ir.shape[1], ir.shape[0])
            ir, vis = resize(ir, w, h), resize(vis, w, h)
        ir_t = gray8_to_model(torch.from_numpy(np.ascontiguousarray(ir)))
        return ir_t, rgb8_to_model(vis)


def epoch_indices(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """This rank's share of epoch ``epoch``'s shuffled order (every rank gets the same count)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    per_rank = n // world
    return perm[rank * per_rank:(rank + 1) * per_rank] if world > 1 else perm
