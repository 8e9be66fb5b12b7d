"""The generator: shapes at many sizes, parameter budget, the layer structure the paper describes."""

import pytest
import torch

import torch.nn.functional as F

from ir2vis_stream.model import (GeneratorConfig, MultiScaleGenerator, ResnetGenerator, Sine, build_generator,
                                 count_flops, count_parameters, fold_sines, generator_spec, resize_conv_state,
                                 upsampler, weight_spec)


def test_default_parameter_count_is_in_the_papers_range():
    n = count_parameters(MultiScaleGenerator())
    assert 10.0e6 <= n <= 11.37e6, n  # paper: 10.81 M; pix2pix ResNet-9: 11.38 M
    assert abs(n - 10.81e6) < 0.05e6


def test_resnet9_parameter_count_matches_pix2pix():
    assert abs(count_parameters(ResnetGenerator(in_channels=3)) - 11.378e6) < 0.01e6


@pytest.mark.parametrize("h,w", [(32, 32), (48, 64), (37, 51), (1, 1), (17, 8), (64, 31)])
@pytest.mark.parametrize("name", ["msp", "resnet9"])
def test_output_shape_matches_input_at_any_size(name, h, w):
    g = build_generator(name, width=4, **({"blocks": (1, 1, 1, 1)} if name == "msp" else {})).eval()
    y = g(torch.randn(2, 1, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.abs().max() <= 1.0


def test_three_channel_grey_input_equals_one_channel():
    torch.manual_seed(0)
    g = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1, 1))).eval()
    x = torch.rand(1, 1, 24, 24) * 2 - 1
    torch.testing.assert_close(g(x), g(x.expand(-1, 3, -1, -1)))


def test_wrong_channel_count_is_a_clear_error():
    g = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1)))
    with pytest.raises(ValueError, match="input channel"):
        g(torch.randn(1, 2, 8, 8))


def test_levels_follow_config_and_coarse_levels_hold_the_depth():
    g = MultiScaleGenerator()
    assert len(g.levels) == 4  # full + 3 downsamplings
    params = [count_parameters(level) for level in g.levels]
    assert params[-1] > sum(params[:-1])  # depth at 1/8 scale


def test_coarse_image_is_added_to_finer_levels():
    """Zeroing every head but the coarsest leaves an output that is constant on each 8x8 block."""
    torch.manual_seed(0)
    g = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1, 1))).eval()
    with torch.no_grad():
        for level in g.levels[:-1]:
            level.head.weight.zero_()
            level.head.bias.zero_()
        y = g(torch.randn(1, 1, 32, 32))
    blocks = y.reshape(1, 3, 4, 8, 4, 8)
    assert torch.allclose(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))


def test_bilinear_level_upsampling_has_no_blocks_and_shares_the_weights():
    """The same weights with bilinear level images: the coarsest image alone is no longer blocky, and the
    finest level's image changes nothing else (the option is weight-compatible)."""
    torch.manual_seed(0)
    g = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1, 1))).eval()
    b = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1, 1), level_upsampling="bilinear")).eval()
    b.load_state_dict(g.state_dict())
    with torch.no_grad():
        for m in (g, b):
            for level in m.levels[:-1]:
                level.head.weight.zero_()
                level.head.bias.zero_()
        x = torch.randn(1, 1, 32, 32)
        coarse = torch.atanh(g(x))[..., ::8, ::8]  # the 4x4 coarsest image, read back from the nearest output
        expected = coarse
        for _ in range(3):
            expected = F.interpolate(expected, scale_factor=2.0, mode="bilinear", align_corners=False)
        torch.testing.assert_close(torch.atanh(b(x)), expected, atol=1e-4, rtol=1e-4)
    assert weight_spec(generator_spec(g)) == weight_spec(generator_spec(b))


def test_upsamplers():
    x = torch.randn(1, 3, 8, 8)
    # initialised as bilinear interpolation: equal to it away from the border (zero padding there)
    y = upsampler(3, "tconv-bilinear")(x)
    torch.testing.assert_close(y[..., 1:-1, 1:-1],
                               F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)[..., 1:-1, 1:-1])
    assert upsampler(3, "resize-conv")(x).shape == y.shape == (1, 3, 16, 16)
    # tconv-bilinear only initialises differently: same weights as the paper's; resize-conv has 3x3 weights
    spec = lambda up: generator_spec(MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1), up=up)))  # noqa: E731
    assert weight_spec(spec("tconv")) == weight_spec(spec("tconv-bilinear")) != weight_spec(spec("resize-conv"))
    for up in ("tconv", "tconv-bilinear", "resize-conv"):
        g = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1, 1), up=up))
        assert g(torch.randn(1, 1, 20, 28)).shape == (1, 3, 20, 28)
    with pytest.raises(ValueError, match="unknown upsampler"):
        GeneratorConfig(up="pixelshuffle")


def test_resize_conv_state_turns_a_bilinear_tconv_into_an_identity_conv():
    torch.manual_seed(0)
    paper = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1), up="tconv-bilinear")).eval()
    resized = MultiScaleGenerator(GeneratorConfig(width=4, blocks=(1, 1), up="resize-conv")).eval()
    state = resize_conv_state(paper.state_dict())
    resized.load_state_dict(state)  # strict: every name and shape fits
    # a bilinear transposed conv is a bilinear resize already: the fitted 3x3 conv is the identity
    w = state["levels.0.up.0.1.weight"]
    identity = torch.zeros_like(w)
    identity[range(4), range(4), 1, 1] = 1.0
    torch.testing.assert_close(w, identity, atol=1e-6, rtol=0)
    torch.testing.assert_close(state["levels.0.up.0.1.bias"], paper.state_dict()["levels.0.up.0.bias"])
    # the two models then agree on the up layer away from the zero-padded border
    up_paper, up_resized = paper.levels[0].up[0], resized.levels[0].up[0]
    x = torch.randn(1, 4, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(up_resized(x)[..., 2:-2, 2:-2], up_paper(x)[..., 2:-2, 2:-2], atol=1e-5, rtol=0)
    # a random transposed conv is fitted, not copied: the fit is the closest resize + conv, so its error is
    # below that of the untouched (zero-init) conv
    k = torch.randn(4, 4, 4, 4)
    fitted = resize_conv_state({"levels.0.up.0.weight": k, "levels.0.up.0.bias": torch.zeros(4)})
    tconv = F.conv_transpose2d(x, k, stride=2, padding=1)
    approx = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False),
                      fitted["levels.0.up.0.1.weight"], padding=1)
    err = (approx - tconv)[..., 2:-2, 2:-2].pow(2).mean() / tconv[..., 2:-2, 2:-2].pow(2).mean()
    assert err < 0.9


def test_sine_is_learnable_per_channel():
    s = Sine(3)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(s(x), torch.sin(x))
    with torch.no_grad():
        s.omega[0, 1] = 2.0
        s.theta[0, 2] = 0.5
    y = s(x)
    torch.testing.assert_close(y[:, 1], torch.sin(2 * x[:, 1]))
    torch.testing.assert_close(y[:, 2], torch.sin(x[:, 2] + 0.5))


def _trained_looking(model):
    """Random norm gains and biases and sine frequencies and phases: the fold must carry all four."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, Sine):
                m.omega.uniform_(0.5, 2.0)
                m.theta.uniform_(-1.0, 1.0)
    return model.eval()


def test_folding_the_sines_into_their_norms_keeps_the_function():
    model = _trained_looking(MultiScaleGenerator(GeneratorConfig(blocks=(1, 1, 2))))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_sines(model)
    sines = [m for m in folded.modules() if isinstance(m, Sine)]
    assert sines and all(s.folded for s in sines)  # every sine of the generator follows an affine norm
    assert all(bool((s.omega == 1).all()) and not s.theta.any() for s in sines)
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=2e-5, rtol=1e-4)
        # the caller's model is untouched, and the folded weights alone (as saved, without the flag) and a
        # second fold give the same function
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        reloaded = MultiScaleGenerator(model.config).eval()
        reloaded.load_state_dict(folded.state_dict())
        torch.testing.assert_close(reloaded(x), folded(x))
        torch.testing.assert_close(fold_sines(folded)(x), folded(x))


def test_flops_of_default_model_at_256():
    gflop = count_flops(MultiScaleGenerator(), 256, 256) / 1e9
    assert 70 < gflop < 71  # documented in the module's layer table: 70.6


def test_per_level_widths_narrow_the_fine_levels_and_cut_their_flops():
    paper = MultiScaleGenerator()
    fast = MultiScaleGenerator(GeneratorConfig(widths=(16, 32, 64, 64)))
    # only levels 1/1 and 1/2 change: 31.4 + 12.7 GFLOP at width 64 become about a sixteenth and a quarter
    assert count_flops(fast, 256, 256) / 1e9 == pytest.approx(31.9, abs=0.1)
    assert count_flops(paper, 256, 256) / count_flops(fast, 256, 256) > 2.2
    assert [lv.stem[0].out_channels for lv in fast.levels] == [16, 32, 64, 64]
    # each upsampler maps the coarser level's width to its own
    assert [(lv.up[0].in_channels, lv.up[0].out_channels) for lv in fast.levels[:-1]] == [(32, 16), (64, 32), (64, 64)]
    for up in ("tconv", "tconv-bilinear", "resize-conv"):
        g = MultiScaleGenerator(GeneratorConfig(widths=(4, 8, 8), blocks=(1, 1, 1), up=up))
        assert g(torch.randn(2, 1, 20, 28)).shape == (2, 3, 20, 28)
    # a narrowing bilinear tconv passes the first channels on as bilinear interpolation
    x = torch.randn(1, 8, 8, 8)
    y = upsampler(8, "tconv-bilinear", 4)(x)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], F.interpolate(x[:, :4], scale_factor=2.0, mode="bilinear",
                                                                 align_corners=False)[..., 1:-1, 1:-1])
    # the checkpoint spec names the widths, and rebuilds the same model; the paper's form names none
    spec = generator_spec(fast)
    assert spec["config"]["widths"] == [16, 32, 64, 64] and "widths" not in generator_spec(paper)["config"]
    assert weight_spec(spec) != weight_spec(generator_spec(paper))
    rebuilt = build_generator(spec["name"], **spec["config"])
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in fast.parameters()]
    with pytest.raises(ValueError, match="one positive width per level"):
        GeneratorConfig(widths=(16, 32, 64))


def test_unknown_generator_name():
    with pytest.raises(ValueError, match="unknown generator"):
        build_generator("unet")


def test_initial_output_is_not_saturated():
    """A deep residual stack must start near the identity, or tanh saturates and gradients vanish."""
    torch.manual_seed(0)
    y = MultiScaleGenerator().eval()(torch.rand(1, 1, 64, 96) * 2 - 1)
    assert (y.abs() > 0.9).float().mean() < 0.01
