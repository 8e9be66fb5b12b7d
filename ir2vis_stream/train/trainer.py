"""The training loop of the paper: a G step, then a D and C step, per batch (the losses: ``objective.py``).

``Trainer(config).fit()`` does the whole run: data, models, Adam(2e-4, 0.5, 0.999), the pix2pix learning-
rate rule (constant for the first half of the epochs, then linear decay to 1/101), mixed precision,
optional ``torch.compile``, DDP under ``torchrun``, held-out metrics each epoch, a sample grid, a JSONL log,
periodic checkpoints (every N epochs and every few minutes) and exact resume.

Files written under ``config.out``:
    state.pt              full training state for --resume (models, optimisers, schedule, position)
    best.pt               generator checkpoint with the best held-out PSNR (the release format)
    epoch_XXXX.pt         generator checkpoints every ``checkpoint_every`` epochs
    last.pt               generator checkpoint at the end of the run (all epochs, or ``max_steps``)
    log.jsonl             one JSON object per logged step and per epoch
    samples/epoch_XXXX.png  IR | output | target for a few held-out images
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .. import metrics
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import ConfigError
from ..files import atomic_write
from ..frames import model_to_rgb8
from ..hardware import autocast_dtype, precision_name, resolve_device
from ..model import build_generator, count_parameters, generator_spec, resize_conv_state, weight_spec
from ..progress import ProgressBar
from . import losses as L
from .config import TrainConfig, lr_factor
from .data import AspectCrop, DataError, FixedResize, MultiScaleCrop, PairedImages, epoch_indices, find_pairs
from .discriminator import MultiScaleDiscriminator
from .objective import discriminator_objective, generator_objective
from .vgg import VGG19Features

STATE_FORMAT = "ir2vis-stream/train-state"
# what a state saved before a setting existed ran with
OLDER_STATE_DEFAULTS = {"upscale": True, "heldout_prefixes": [], "multi_scale": False, "lambda_pixel": 100.0}


class Trainer:
    """Owns the models, optimisers and loop; ``fit()`` runs (or resumes) training to ``config.epochs``."""

    def __init__(self, config: TrainConfig, resume: bool = False):
        self.cfg = cfg = config
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.distributed = self.world > 1
        self.device = resolve_device(cfg.device)
        if self.distributed:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if self.device.type == "cuda":
                self.device = torch.device("cuda", local)
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.is_main = self.rank == 0
        self.amp_dtype = autocast_dtype(self.device, cfg.precision)
        self.out = Path(cfg.out)

        # Data first: bad data should fail before anything slow happens.
        self.train_pairs, self.val_pairs = find_pairs(cfg.data, heldout_prefixes=tuple(cfg.heldout_prefixes))
        self.policy = (FixedResize(*cfg.resize) if cfg.resize else MultiScaleCrop(cfg.scale, cfg.crop) if cfg.multi_scale
                       else AspectCrop(cfg.scale, cfg.crop, upscale=cfg.upscale))
        self.train_set = PairedImages(self.train_pairs, self.policy, train=True, seed=cfg.seed)
        self.val_set = PairedImages(self.val_pairs, self.policy, train=False)
        self.steps_per_epoch = (len(self.train_set) // self.world) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(f"{len(self.train_set)} training pairs are fewer than one batch of {cfg.batch_size} per process")

        torch.manual_seed(cfg.seed)
        self.G = build_generator(cfg.generator, **cfg.generator_config)
        self.init_meta = self._init_generator(cfg.init) if cfg.init else None
        self.G.to(self.device)
        out_ch = 3
        self.D = MultiScaleDiscriminator(out_ch, cfg.num_d, n_layers=cfg.d_layers).to(self.device)
        self.C = MultiScaleDiscriminator(self.G.in_channels + out_ch, cfg.num_d, n_layers=cfg.d_layers).to(self.device)
        self.vgg = (VGG19Features(cfg.vgg_weights, random_init=cfg.vgg_random_init).to(self.device)
                    if cfg.perceptual else None)
        for m in (self.G, self.D, self.C):
            m.to(memory_format=torch.channels_last)
        self.g_params = list(self.G.parameters())
        self.opt_g = torch.optim.Adam(self.g_params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(list(self.D.parameters()) + list(self.C.parameters()), lr=cfg.lr,
                                      betas=(cfg.beta1, cfg.beta2))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        self.epoch = 0  # next epoch to run
        self.step_in_epoch = 0  # next batch within it
        self.global_step = 0
        self.best_psnr = -math.inf
        self.history: list[dict] = []  # per-epoch summaries, kept in the state for the checkpoint metadata
        self.baseline: dict | None = None  # IR-as-grey metrics on the held-out set
        if resume:
            self.load_state(self.out / "state.pt")

        # Wrappers: the G step calls D/C without DDP (no gradients go to their parameters there).
        g, d, c = self.G, self.D, self.C
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            g = nn.parallel.DistributedDataParallel(g, device_ids=ids)
            d_train = nn.parallel.DistributedDataParallel(d, device_ids=ids)
            c_train = nn.parallel.DistributedDataParallel(c, device_ids=ids)
        else:
            d_train, c_train = d, c
        if cfg.compile:
            g, d, c, d_train, c_train = (torch.compile(m) for m in (g, d, c, d_train, c_train))
            if not self.distributed:
                d_train, c_train = d, c
        self.g_run, self.d_run, self.c_run, self.d_train, self.c_train = g, d, c, d_train, c_train

    def _init_generator(self, path: str) -> dict:
        """Load G's weights from a release checkpoint of the same architecture; what to record about it."""
        ck = load_checkpoint(path)
        theirs, mine = generator_spec(ck.model), generator_spec(self.G)
        state = ck.model.state_dict()
        converted = partial = None
        if weight_spec(theirs) != weight_spec(mine) and _tconv_to_resize_conv(theirs, mine):
            state, converted = resize_conv_state(state), "tconv -> resize-conv (least-squares fit)"
        elif weight_spec(theirs) != weight_spec(mine) and _only_sizes_differ(theirs, mine):
            # narrower (or wider) levels, fewer (or more) blocks: every tensor of the same name and shape comes
            # from --init (the levels whose width and neighbours' widths are unchanged; of a shorter level its
            # first blocks), the rest keep their fresh initialisation
            own = self.G.state_dict()
            kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            state = {**own, **kept}
            mine_c, theirs_c = self.G.config, ck.model.config
            partial = "; ".join(
                f"{what} {list(a)} from {list(b)}" for what, a, b in
                (("widths", mine_c.level_widths, theirs_c.level_widths), ("blocks", mine_c.blocks, theirs_c.blocks))
                if tuple(a) != tuple(b)) + f": {len(kept)} of {len(own)} tensors from --init, the rest fresh"
        elif weight_spec(theirs) != weight_spec(mine):
            raise ConfigError(f"--init {path} holds a {theirs['name']} generator with config {theirs['config']}; "
                             f"this run trains {mine['name']} with config {mine['config']}")
        self.G.load_state_dict(state)
        keys = ("epochs_done", "global_step", "batch_size", "heldout")
        return {"path": str(path), **{k: ck.meta.get(k) for k in keys}, "upsampler_converted": converted,
                **({"partial": partial} if partial else {})}

    # ---- one step ---------------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)

    def train_step(self, ir: torch.Tensor, vis: torch.Tensor) -> dict[str, float]:
        """One G step, then one D and C step (``objective.py``); the logged terms and losses. During
        ``--d-warmup-steps`` only the D and C step, against the frozen generator, run eager: a forward without
        gradients would be one more graph for ``torch.compile`` to build."""
        cfg = self.cfg
        if self.global_step < cfg.d_warmup_steps:
            with torch.no_grad(), self.autocast():
                fake = self.G(ir)
            return self.discriminator_step(ir, vis, fake)
        # G's loss flows through D and C to the fake image, but is backed only into G's parameters
        # (backward(inputs=...)), which also avoids toggling requires_grad, a change that would make
        # torch.compile recompile every step.
        with self.autocast():
            fake = self.g_run(ir)
        loss_g, terms = generator_objective(ir, vis, fake, self.d_run, self.c_run, self.vgg, cos=cfg.cos,
                                            cos_centred=cfg.cos_centred, tvd=cfg.tvd, grid=cfg.grid_loss,
                                            lambda_pixel=cfg.lambda_pixel, autocast=self.autocast)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward(inputs=self.g_params)
        self.scaler.step(self.opt_g)
        out = {k: v.item() for k, v in terms.items()}
        out.update(loss_g=loss_g.item(), **self.discriminator_step(ir, vis, fake))
        return out

    def discriminator_step(self, ir: torch.Tensor, vis: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        """One D and C step on ``fake`` (no gradient reaches G); their losses. Ends the step (scaler update)."""
        loss_d, loss_c = discriminator_objective(ir, vis, fake, self.d_train, self.c_train, autocast=self.autocast)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d + loss_c).backward()
        self.scaler.step(self.opt_d)
        self.scaler.update()
        return {"loss_d": loss_d.item(), "loss_c": loss_c.item()}

    # ---- validation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out RMSE/PSNR/SSIM (8-bit) per data root and overall; also the IR-as-grey baseline once."""
        self.G.eval()
        per_root: dict[str, dict[str, list[float]]] = {}
        base_root: dict[str, dict[str, list[float]]] = {}
        samples = []
        for i in range(len(self.val_set)):
            ir, vis = self.val_set[i]
            ir, vis = ir[None].to(self.device), vis[None].to(self.device)
            with self.autocast():
                fake = self.G(ir.contiguous(memory_format=torch.channels_last))
            out8 = model_to_rgb8(fake).permute(0, 3, 1, 2).float()
            vis8 = model_to_rgb8(vis).permute(0, 3, 1, 2).float()
            root = self.val_pairs[i].root
            for k, v in metrics.image_metrics(out8, vis8).items():
                per_root.setdefault(root, {}).setdefault(k, []).append(v.item())
            if self.baseline is None:
                grey8 = model_to_rgb8(ir.expand(-1, 3, -1, -1)).permute(0, 3, 1, 2).float()
                for k, v in metrics.image_metrics(grey8, vis8).items():
                    base_root.setdefault(root, {}).setdefault(k, []).append(v.item())
            if len(samples) < self.cfg.samples:
                samples.append((ir, fake, vis))
        self.G.train()
        result = _summarise(per_root)
        if self.baseline is None:
            self.baseline = _summarise(base_root)
        if samples and self.is_main:
            _write_grid(samples, self.out / "samples" / f"epoch_{self.epoch:04d}.png")  # the epoch just ended
        return result

    # ---- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": STATE_FORMAT,
            "config": _config_dict(self.cfg),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "best_psnr": self.best_psnr, "history": self.history, "baseline": self.baseline,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "C": self.C.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def save_state(self) -> None:
        """The resumable state (``state.pt``) and, beside it, the generator as it is now (``latest.pt``, a
        checkpoint like ``best.pt``): a run cut off mid-epoch still leaves a model to evaluate."""
        if self.is_main:
            atomic_write(self.out / "state.pt", lambda tmp: torch.save(self.state_dict(), tmp))
            save_checkpoint(self.out / "latest.pt", self.G, self.release_meta(self.history[-1]["val"] if self.history else None))

    def load_state(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"--resume: no training state at {path}")
        s = torch.load(path, map_location=self.device, weights_only=True)
        if not isinstance(s, dict) or s.get("format") != STATE_FORMAT:
            raise ConfigError(f"{path} is not an ir2vis-stream training state")
        saved = s["config"]
        for key in ("generator", "generator_config", "epochs", "batch_size", "scale", "crop", "resize", "seed",
                    "upscale", "heldout_prefixes", "multi_scale", "lambda_pixel"):
            mine = _config_dict(self.cfg)[key]
            if saved.get(key, OLDER_STATE_DEFAULTS.get(key)) != mine:
                raise ConfigError(f"--resume: {key} was {saved.get(key)!r} in the saved run, now {mine!r}; "
                                 f"use the same settings or a new --out folder")
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.C.load_state_dict(s["C"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.scaler.load_state_dict(s["scaler"])
        torch.set_rng_state(s["torch_rng"].cpu())
        self.epoch, self.step_in_epoch, self.global_step = s["epoch"], s["step_in_epoch"], s["global_step"]
        self.best_psnr, self.history, self.baseline = s["best_psnr"], s["history"], s["baseline"]

    def release_meta(self, val: dict | None) -> dict:
        """Metadata of a generator checkpoint: what a user needs to know about how it was made."""
        cfg = self.cfg
        return {
            "train_size": self.policy.describe(),
            "data": [{"path": r, "train_pairs": sum(p.root == r for p in self.train_pairs),
                      "heldout_pairs": sum(p.root == r for p in self.val_pairs)} for r in cfg.data],
            "holdout": "every 10th pair of each sequence (natural sort order)" + (
                f"; whole clips in sequences with names starting {', '.join(cfg.heldout_prefixes)}"
                if cfg.heldout_prefixes else ""),
            "losses": L.LossSwitches(cfg.cos, cfg.tvd, cfg.perceptual, cfg.grid_loss).names(),
            "cos_centred": cfg.cos_centred, "upscale": cfg.upscale,
            "lambdas": {"pixel": cfg.lambda_pixel, "adversarial": L.LAMBDA_ADV, "feature": L.LAMBDA_FEAT},
            "initialised_from": self.init_meta,
            "vgg": ("random-init (test only)" if cfg.vgg_random_init else "imagenet") if cfg.perceptual else None,
            "epochs_done": self.epoch, "epochs_planned": cfg.epochs, "global_step": self.global_step,
            "batch_size": cfg.batch_size * self.world, "scale": cfg.scale, "crop": cfg.crop, "resize": cfg.resize,
            "precision": precision_name(self.amp_dtype), "compiled": cfg.compile,
            "device": _device_name(self.device), "world_size": self.world,
            "heldout": val, "heldout_epoch": self.history[-1]["epoch"] if self.history else None,
            "heldout_ir_as_grey": self.baseline,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    # ---- the loop -----------------------------------------------------------------------------------------
    @property
    def budget_spent(self) -> bool:
        return self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps

    def fit(self) -> dict | None:
        cfg = self.cfg
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        log = _JsonlLog(self.out / "log.jsonl") if self.is_main else None
        last_save = time.monotonic()
        epochs_run = steps_run = 0
        val = self.history[-1]["val"] if self.history else None
        show = self.is_main and not cfg.quiet
        progress = ProgressBar(show, _epoch_columns, info="")
        if log and self.global_step == 0:
            log.write({"event": "start", "config": _config_dict(cfg), "train_pairs": len(self.train_pairs),
                       "heldout_pairs": len(self.val_pairs), "generator_params": count_parameters(self.G),
                       "precision": precision_name(self.amp_dtype), "device": _device_name(self.device)})
        try:
            with progress:
                while self.epoch < cfg.epochs:
                    if cfg.max_epochs_this_run is not None and epochs_run >= cfg.max_epochs_this_run:
                        break
                    lr = cfg.lr * lr_factor(self.epoch, cfg.epochs_constant, cfg.epochs_decay)
                    for opt in (self.opt_g, self.opt_d):
                        for group in opt.param_groups:
                            group["lr"] = lr
                    self.train_set.set_epoch(self.epoch)
                    order = epoch_indices(len(self.train_set), cfg.seed, self.epoch, self.rank, self.world)
                    order = order[self.step_in_epoch * cfg.batch_size:self.steps_per_epoch * cfg.batch_size]
                    loader = DataLoader(self.train_set, batch_size=cfg.batch_size, sampler=order, drop_last=True,
                                        num_workers=cfg.workers, persistent_workers=False,
                                        pin_memory=self.device.type == "cuda")
                    progress.new_task(f"epoch {self.epoch + 1}/{cfg.epochs}", self.steps_per_epoch, self.step_in_epoch)
                    t_epoch = time.monotonic()
                    for ir, vis in _batches(loader):
                        ir = ir.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                        vis = vis.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                        t0 = time.monotonic()
                        terms = self.train_step(ir, vis)
                        self.step_in_epoch += 1
                        self.global_step += 1
                        steps_run += 1
                        progress.update(advance=1, info=f"L_G {terms['loss_g']:.2f}" if "loss_g" in terms else "D warm-up")
                        if log and self.global_step % cfg.log_every == 0:
                            log.write({"event": "step", "epoch": self.epoch + 1, "step": self.global_step, "lr": lr,
                                       "sec_per_step": round(time.monotonic() - t0, 4), **_round(terms)})
                        if time.monotonic() - last_save > cfg.checkpoint_minutes * 60:
                            self.save_state()
                            last_save = time.monotonic()
                        if cfg.max_steps_this_run is not None and steps_run >= cfg.max_steps_this_run:
                            break
                        if self.budget_spent:
                            break
                    if self.step_in_epoch < self.steps_per_epoch:  # stopped mid-epoch by a step limit
                        self.save_state()
                        if self.budget_spent and self.is_main:
                            save_checkpoint(self.out / "last.pt", self.G, self.release_meta(val))
                        return val
                    # end of epoch
                    self.epoch += 1
                    self.step_in_epoch = 0
                    epochs_run += 1
                    if self.is_main:
                        epoch_seconds = round(time.monotonic() - t_epoch, 1)
                        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
                            val = self.evaluate()
                            summary = {"epoch": self.epoch, "lr": lr, "val": val, "epoch_seconds": epoch_seconds}
                            self.history.append(summary)
                            log.write({"event": "epoch", **summary, "ir_as_grey": self.baseline})
                            if show:
                                progress.print(_epoch_line(self.epoch, val))
                            if val["all"]["psnr"] > self.best_psnr:
                                self.best_psnr = val["all"]["psnr"]
                                save_checkpoint(self.out / "best.pt", self.G, self.release_meta(val))
                        else:
                            log.write({"event": "epoch", "epoch": self.epoch, "lr": lr, "epoch_seconds": epoch_seconds})
                        if self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs:
                            save_checkpoint(self.out / f"epoch_{self.epoch:04d}.pt", self.G, self.release_meta(val))
                    self.save_state()
                    last_save = time.monotonic()
                    if self.distributed:
                        dist.barrier()
                    if self.budget_spent:
                        break
            if self.is_main and (self.epoch >= cfg.epochs or self.budget_spent):
                save_checkpoint(self.out / "last.pt", self.G, self.release_meta(val))
        except KeyboardInterrupt:
            self.save_state()
            raise
        return val


def _tconv_to_resize_conv(theirs: dict, mine: dict) -> bool:
    """True when ``theirs`` differs from ``mine`` only in a transposed-conv upsampler where mine resizes."""
    a, b = weight_spec(theirs), weight_spec(mine)
    return (a["name"] == b["name"] == "msp" and a["config"]["up"] == "tconv" and b["config"]["up"] == "resize-conv"
            and {**a["config"], "up": None} == {**b["config"], "up": None})


def _only_sizes_differ(theirs: dict, mine: dict) -> bool:
    """True when two msp generators of as many levels differ only in their channel widths (``width``,
    ``widths``) and blocks per level."""
    a, b = weight_spec(theirs), weight_spec(mine)

    def rest(config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in ("width", "widths", "blocks")}
    return (a["name"] == b["name"] == "msp" and rest(a["config"]) == rest(b["config"])
            and len(a["config"]["blocks"]) == len(b["config"]["blocks"]))


def _batches(loader):
    """The loader's batches; an image that fails to decode (a DataError in a worker) as one line.

    DataLoader re-raises a worker's exception with the worker's whole traceback as its message; the user
    needs its last line, which names the file. Other failures pass through untouched.
    """
    try:
        yield from loader
    except DataError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise DataError(f"bad training data: {lines[-1].split(': ', 1)[-1]}") from None


def _summarise(per_root: dict[str, dict[str, list[float]]]) -> dict:
    out = {root: {k: float(np.mean(v)) for k, v in m.items()} for root, m in per_root.items()}
    allv: dict[str, list[float]] = {}
    for m in per_root.values():
        for k, v in m.items():
            allv.setdefault(k, []).extend(v)
    out["all"] = {k: float(np.mean(v)) for k, v in allv.items()} if allv else {"psnr": math.nan}
    return out


def _write_grid(samples, path: Path) -> None:
    import cv2

    rows = []
    height = 160
    for ir, fake, vis in samples:
        tiles = [model_to_rgb8(t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t)[0].cpu().numpy() for t in (ir, fake, vis)]
        h, w = tiles[0].shape[:2]
        tw = max(1, round(w * height / h))
        rows.append(np.concatenate([cv2.resize(t, (tw, height), interpolation=cv2.INTER_AREA) for t in tiles], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    atomic_write(path, lambda tmp: cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR)))


class _JsonlLog:
    def __init__(self, path: Path):
        self.path = path

    def write(self, record: dict) -> None:
        record = {"time": round(time.time(), 3), **record}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def _epoch_columns(p):
    return (p.TextColumn("{task.description}"), p.BarColumn(), p.MofNCompleteColumn(), p.TimeRemainingColumn(),
            p.TextColumn("{task.fields[info]}"))


def _epoch_line(epoch: int, val: dict) -> str:
    a = val["all"]
    return (f"epoch {epoch}: held-out PSNR {a['psnr']:.2f} dB, SSIM {a.get('ssim', math.nan):.4f}, "
            f"RMSE {a.get('rmse', math.nan):.2f}")


def _round(d: dict) -> dict:
    return {k: round(v, 5) for k, v in d.items()}


def _config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["resize"] = list(cfg.resize) if cfg.resize else None
    d["data"] = [str(p) for p in cfg.data]
    return d


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
