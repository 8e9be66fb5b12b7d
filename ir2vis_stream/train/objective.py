"""The paper's objective as two functions of the networks, like pix2pixHD's model forward returning its losses.

``generator_objective``: L_G = λ1 (L1 + COS + TVD [+ GRID]) + λ2 (GAN + CGAN) + λ3 (FM + PL), λ = 100 / 1 / 10, for a
generated image against its target, through the image discriminator D and the conditional one C (which
sees the IR image beside the colour one). ``discriminator_objective``: L_D = GAN_D + CGAN_D, each
0.5 (real + fake) as in pix2pixHD. Neither touches an optimiser: ``Trainer.train_step`` runs them, backs
each loss into its own networks' parameters and steps. The networks run under ``autocast``; the loss
terms are computed in fp32.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch

from . import losses as L

Net = Callable[[torch.Tensor], list]


def generator_objective(ir: torch.Tensor, vis: torch.Tensor, fake: torch.Tensor, d: Net, c: Net, vgg=None, *,
                        cos: bool = True, cos_centred: bool = False, tvd: bool = True, grid: bool = False,
                        lambda_pixel: float = L.LAMBDA_PIXEL,
                        autocast: Callable = nullcontext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(L_G, its terms by name) for ``fake`` = G(``ir``) against ``vis``; ``vgg``: the perceptual features or None;
    ``lambda_pixel``: λ1 (the paper's 100 by default)."""
    with autocast():
        fake_d, fake_c = d(fake), c(torch.cat([ir, fake], 1))
        with torch.no_grad():
            real_d, real_c = d(vis), c(torch.cat([ir, vis], 1))
            real_vgg = vgg(vis) if vgg is not None else None
        fake_vgg = vgg(fake) if vgg is not None else None
    fake32 = fake.float()
    terms = {"l1": L.l1_loss(fake32, vis)}
    if cos:
        terms["cos"] = L.cosine_loss(fake32, vis, centred=cos_centred)
    if tvd:
        terms["tvd"] = L.tvd_loss(fake32, vis)
    if grid:
        terms["grid"] = L.grid_loss(fake32, vis)
    terms["gan"] = L.lsgan_loss(fake_d, True)
    terms["cgan"] = L.lsgan_loss(fake_c, True)
    terms["fm"] = L.feature_matching_loss(fake_d, real_d) + L.feature_matching_loss(fake_c, real_c)
    if fake_vgg is not None:
        terms["perceptual"] = L.perceptual_loss(fake_vgg, real_vgg)
    pixel = sum(terms[k] for k in ("l1", "cos", "tvd", "grid") if k in terms)
    feat = terms["fm"] + terms.get("perceptual", 0.0)
    loss = lambda_pixel * pixel + L.LAMBDA_ADV * (terms["gan"] + terms["cgan"]) + L.LAMBDA_FEAT * feat
    return loss, terms


def discriminator_objective(ir: torch.Tensor, vis: torch.Tensor, fake: torch.Tensor, d: Net, c: Net, *,
                            autocast: Callable = nullcontext) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_D of D, L_D of C): each 0.5 (real judged real + fake judged fake); ``fake`` carries no gradient to G."""
    fake = fake.detach()
    with autocast():
        d_real, d_fake = d(vis), d(fake)
        c_real, c_fake = c(torch.cat([ir, vis], 1)), c(torch.cat([ir, fake], 1))
    loss_d = 0.5 * (L.lsgan_loss(d_real, True) + L.lsgan_loss(d_fake, False))
    loss_c = 0.5 * (L.lsgan_loss(c_real, True) + L.lsgan_loss(c_fake, False))
    return loss_d, loss_c
