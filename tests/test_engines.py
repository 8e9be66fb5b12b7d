"""Inference engines: parity with eager fp32, reduced precision judged on the picture, caches, auto rule.

TensorRT cannot be installed where these tests run: its tests cover the logic that needs no TensorRT
(cache keys, profiles, plan invalidation and rebuild, the fp16 ONNX with fp32 instance norms) and the
clear error when it is missing. A backend that is not installed is skipped with the reason.
"""

import importlib.util
import sys
import threading
import warnings

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from conftest import GreyIdentity, tiny_generator
from ir2vis_stream import metrics
from ir2vis_stream.checkpoint import save_checkpoint
from ir2vis_stream.cli import main
from ir2vis_stream.engines import EngineUnavailable, TorchEngine, auto_candidates, cache, create_engine
from ir2vis_stream.engines import tensorrt_engine as trt_logic
from ir2vis_stream.engines.onnx_export import check_onnx, export_onnx_bytes
from ir2vis_stream.engines.prepare import OnePassInstanceNorm, inference_model
from ir2vis_stream.files import atomic_write
from ir2vis_stream.frames import model_to_rgb8
from ir2vis_stream.hardware import cpu_has_fast_bf16
from ir2vis_stream.model import GeneratorConfig, MultiScaleGenerator, Sine

CPU = torch.device("cpu")
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IR2VIS_STREAM_CACHE", str(tmp_path / "cache"))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def train_small(blocks: tuple[int, ...]) -> MultiScaleGenerator:
    """A small generator trained for 80 steps on image-like data, so its outputs are pictures, not noise:
    reduced precision is judged on what a user would see."""
    torch.manual_seed(0)
    g = MultiScaleGenerator(GeneratorConfig(width=16, blocks=blocks))
    opt = torch.optim.Adam(g.parameters(), 2e-3)
    for _ in range(80):
        x = image_like(2, 48, 64, seed=int(torch.randint(0, 10**6, ())))
        y = torch.cat([x, -x, x * 0.5], 1)  # a colour mapping of the IR image
        loss = (g(x) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return g.eval()


@pytest.fixture(scope="module")
def trained_model():
    return train_small((1, 1, 2, 4))


@pytest.fixture(scope="module")
def two_level_model():
    """For the real package build, whose time grows with the graph: two levels (padding to multiples of 2)
    have every kind of layer the default model has, in half the graph of ``trained_model``'s four."""
    return train_small((1, 2))


def image_like(n: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    """Smooth random images in [-1, 1] with edges: blurred noise plus a few bright blobs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, h // 8 + 1, w // 8 + 1, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (x.clamp(0, 1) * 2 - 1)


def picture_diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(mean absolute difference in grey levels, PSNR in dB) of two generator outputs as 8-bit images."""
    a8 = model_to_rgb8(a).permute(0, 3, 1, 2).float()
    b8 = model_to_rgb8(b).permute(0, 3, 1, 2).float()
    return (a8 - b8).abs().mean().item(), metrics.psnr(a8, b8).mean().item()


# ---- fp32 parity: relative error <= 1e-4 against eager fp32 -------------------------------------------------
SIZES = [(1, 32, 48), (3, 37, 51), (2, 64, 40)]


@needs_ort
def test_onnxruntime_fp32_parity(trained_model):
    eng = create_engine("onnxruntime", trained_model, CPU, "fp32")
    for n, h, w in SIZES:
        x = torch.rand(n, 1, h, w) * 2 - 1
        y = eng(x)
        assert y.shape == (n, 3, h, w)
        assert rel_err(y, trained_model(x).detach()) <= 1e-4


def test_compile_builds_one_package_for_every_size_and_the_next_engine_loads_it(two_level_model):
    """The real AOTInductor build, once, at the precision auto uses here: every size and batch runs the one
    package (bf16: within a grey level and 40 dB of fp32; fp32: parity), and a second engine of the same model
    loads it from the cache instead of building again."""
    precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    messages = []
    eng = create_engine("compile", two_level_model, CPU, precision, log=messages.append, wait=True)
    assert eng.ready and eng.build is None and "building" in messages[0] and "ready after" in messages[-1]
    for n, h, w in ((3, 40, 56), (1, 37, 51), (2, 8, 8), (5, 64, 96)):  # 37x51 is padded inside
        x = image_like(n, h, w, seed=h)
        y, ref = eng(x), two_level_model(x).detach()
        assert y.shape == (n, 3, h, w), (n, h, w)
        if precision == "fp32":
            assert rel_err(y, ref) <= 1e-4, (n, h, w)
        else:
            mad, db = picture_diff(y, ref)
            assert mad <= 1.0 and db >= 40, (n, h, w, mad, db)
    assert len(list((cache.cache_root() / "aot").glob("*.pt2"))) == 1
    again = []
    second = create_engine("compile", two_level_model, CPU, precision, log=again.append)
    assert second.ready and second.build is None and again == []
    assert eng.describe() == second.describe() == f"compile cpu {precision}"


def test_a_package_build_runs_at_the_lowest_cpu_priority(trained_model):
    """The run that starts a build keeps the CPU for its eager frames; the build gets what is left. Its nice
    only counts within its session (autogroup scheduling), so it stays in the run's session, in a process
    group of its own (which a terminal's Ctrl-C does not reach, and which ``kill_build`` kills whole)."""
    import os
    import time

    from ir2vis_stream.engines import aot

    build = aot.Build(trained_model, "fp32", cache.cache_root() / "aot" / "priority-probe.pt2")
    try:
        deadline = time.monotonic() + 30
        while build.poll() is None and time.monotonic() < deadline:
            if os.getpriority(os.PRIO_PROCESS, build.process.pid) == aot.LOWEST_PRIORITY:
                break
            time.sleep(0.05)
        assert build.poll() is None, build.failure()
        assert os.getpriority(os.PRIO_PROCESS, build.process.pid) == aot.LOWEST_PRIORITY == 19
        assert os.getsid(build.process.pid) == os.getsid(0)
        assert os.getpgid(build.process.pid) == build.process.pid != os.getpgid(0)
    finally:
        aot.cancel_builds()


class FakeBuilds:
    """Stands in for ``aot.Build`` (a process that takes a minute) and ``aot.load_package``: a build finishes
    when told to, with ``status``; a finished one, or a verified cache entry, loads as a function that records
    the thread it runs on and computes the model's aligned forward."""

    def __init__(self, model):
        self.model, self.status, self.started, self.calls, self.made = model, 0, [], [], set()
        registry = self

        class Build:
            def __init__(self, model, precision, dest):
                self.dest, self.status, self.done = dest, registry.status, threading.Event()
                self.log_path = dest.with_suffix(".log")
                registry.started.append(self)

            def poll(self):
                return self.status if self.done.is_set() else None

            def finish(self):
                if self.status == 0:
                    registry.made.add(self.dest)
                self.done.set()

            def wait(self):
                self.finish()
                return self.status

            def seconds(self):
                return 1.0

            def failure(self):
                return "inductor: no working C++ compiler"

        self.Build = Build

    def load_package(self, path):
        if path not in self.made and cache.load_verified(path) is None:
            return None

        def compiled(x):
            self.calls.append(threading.current_thread().name)
            return self.model.forward_aligned(x)
        return compiled


@pytest.fixture
def fake_builds(trained_model, monkeypatch):
    from ir2vis_stream.engines import aot

    fake = FakeBuilds(trained_model)
    monkeypatch.setattr(aot, "Build", fake.Build)
    monkeypatch.setattr(aot, "load_package", fake.load_package)
    return fake


def test_compile_runs_eager_while_its_package_builds_then_switches(trained_model, fake_builds):
    messages = []
    eng = create_engine("compile", trained_model, CPU, "fp32", log=messages.append)
    assert len(fake_builds.started) == 1 and not eng.ready
    assert eng.describe() == "compile cpu fp32 (eager until its build is ready)"
    x = torch.rand(2, 1, 40, 56) * 2 - 1
    assert rel_err(eng(x), trained_model(x).detach()) <= 1e-6 and fake_builds.calls == []  # eager, at once
    assert "running eager until it is ready" in messages[0]
    fake_builds.started[0].finish()  # the build is done: the next call switches to it
    assert rel_err(eng(x), trained_model(x).detach()) <= 1e-6 and len(fake_builds.calls) == 1
    assert eng.ready and eng.describe() == "compile cpu fp32" and "switched from eager" in messages[-1]


def test_a_failed_package_build_leaves_the_engine_eager_with_one_warning(trained_model, fake_builds):
    fake_builds.status = 1
    eng = create_engine("compile", trained_model, CPU, "fp32")
    fake_builds.started[0].finish()
    x = torch.rand(2, 1, 40, 56) * 2 - 1
    with pytest.warns(UserWarning, match="package build failed .*no working C\\+\\+ compiler.*running eager"):
        y = eng(x)
    assert rel_err(y, trained_model(x).detach()) <= 1e-6 and fake_builds.calls == []
    assert eng.describe() == "torch cpu fp32" and eng.reason.endswith("compile failed, running eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stays eager, without warning again
        assert rel_err(eng(x), trained_model(x).detach()) <= 1e-6


def test_a_corrupt_package_is_rebuilt_and_rebuild_ignores_a_good_one(trained_model, fake_builds):
    from ir2vis_stream.engines import aot

    path = aot.package_path(trained_model, "fp32")
    cache.store(path, b"a whole package")
    assert create_engine("compile", trained_model, CPU, "fp32").ready and fake_builds.started == []
    path.write_bytes(b"a whole pack")  # truncated: its checksum no longer matches
    assert not create_engine("compile", trained_model, CPU, "fp32").ready and len(fake_builds.started) == 1
    cache.store(path, b"a whole package")
    eng = create_engine("compile", trained_model, CPU, "fp32", rebuild=True)
    assert not eng.ready and len(fake_builds.started) == 2 and not path.exists()


def test_a_damaged_or_foreign_package_does_not_load(tmp_path, monkeypatch):
    import torch._inductor

    from ir2vis_stream.engines import aot

    path = tmp_path / "k.pt2"
    assert aot.load_package(path) is None  # missing
    cache.store(path, b"not a package, but checksummed")
    assert aot.load_package(path) is None  # whole, but not loadable: rebuilt, never an error
    opened = []
    monkeypatch.setattr(torch._inductor, "aoti_load_package", lambda p: opened.append(p) or "runner")
    assert aot.load_package(path) == "runner" and opened == [str(path)]
    path.write_bytes(b"not a pack")  # truncated: never handed to the loader
    assert aot.load_package(path) is None and len(opened) == 1


def test_a_package_is_keyed_by_weights_precision_torch_and_cpu(trained_model, monkeypatch):
    from ir2vis_stream.engines import aot

    base = aot.package_path(trained_model, "bf16")
    assert aot.package_path(trained_model, "bf16") == base
    assert aot.package_path(trained_model, "fp32") != base
    assert aot.package_path(tiny_generator(), "bf16") != base
    with monkeypatch.context() as m:
        m.setattr(torch, "__version__", "9.9.9")
        assert aot.package_path(trained_model, "bf16") != base
    with monkeypatch.context() as m:
        other = "AVX512" if torch.backends.cpu.get_cpu_capability() == "AVX2" else "AVX2"  # AVX2 is this CPU's on some
        m.setattr(torch.backends.cpu, "get_cpu_capability", lambda: other)
        assert aot.package_path(trained_model, "bf16") != base
    assert aot.package_path(trained_model, "bf16") == base


@pytest.mark.parametrize("threads", [1, 2, 3, 16])
def test_a_package_is_exported_with_an_example_that_splits_per_pixel_work_for_a_batch_of_one(threads):
    """Inductor decides from the example's sizes how its loops are split over threads: a batch equal to the
    thread count (or twice it) splits the instance-norm and sine kernels over the batch alone, so a batch of
    one runs them on one core; a batch of one fixes the batch; tiny frames look like too little work."""
    from ir2vis_stream.engines import aot

    batch, channels, h, w = aot.example_shape(8, 1, threads)
    assert batch > 1 and channels == 1
    if threads > 1:
        assert batch != threads and batch < 2 * threads
    assert h % 8 == 0 and w % 8 == 0 and (h // 8) * (w // 8) >= 32 * 32  # the 1/8 level: a real frame's work
    assert aot.example_shape(3, 1, threads)[2] % 3 == 0


def test_concurrent_builders_of_one_package_build_it_once(trained_model, monkeypatch, tmp_path):
    """The builder process: a second builder waits on the first's lock and then finds its package."""
    import fcntl

    from ir2vis_stream.engines import aot

    builds = []
    monkeypatch.setattr(aot, "build_package", lambda model, precision, dest: (builds.append(dest),
                                                                              cache.store(dest, b"package")))
    dest = tmp_path / "cache" / "aot" / "k.pt2"
    dest.parent.mkdir(parents=True)
    specs = [save_checkpoint(tmp_path / f"m{i}.pt", trained_model) for i in range(2)]
    with open(dest.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a first builder holds the lock
        second = threading.Thread(target=aot.main, args=([str(specs[0]), "fp32", str(dest)],))
        second.start()
        second.join(0.5)
        assert second.is_alive() and builds == []  # waits
        cache.store(dest, b"package")  # the first builder's package
    second.join(10)
    assert not second.is_alive() and builds == []
    assert aot.main([str(specs[1]), "fp32", str(dest)]) == 0 and builds == []  # present: nothing to build
    assert not specs[0].exists() and not specs[1].exists()  # each builder removes the model it was given
    dest.unlink()
    save_checkpoint(specs[0], trained_model)
    assert aot.main([str(specs[0]), "fp32", str(dest)]) == 0 and builds == [dest]


def test_a_compiled_engine_on_the_cpu_runs_on_the_callers_thread(trained_model, fake_builds):
    """A thread of its own would hold a second team of OpenMP workers (``hardware.release_torch_workers``).
    (On CUDA it runs every call on its own thread, for CUDA graphs recorded per thread: untested here.)"""
    calls = fake_builds.calls
    eng = create_engine("compile", trained_model, CPU, "fp32", wait=True)
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    eng(x)  # the main thread (a warm-up)
    worker = threading.Thread(target=eng, args=(x,), name="ir2vis-infer")
    worker.start()
    worker.join()
    assert calls == [threading.main_thread().name, "ir2vis-infer"]


def test_compile_does_not_hide_errors_of_the_model_itself(trained_model, monkeypatch):
    from ir2vis_stream.engines import aot

    def out_of_memory(x):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(aot, "load_package", lambda path: out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        create_engine("compile", trained_model, CPU, "fp32")(torch.zeros(1, 1, 32, 32))


def test_onnx_paths_say_which_extra_is_missing(trained_model, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    with pytest.raises(EngineUnavailable, match="pip install 'ir2vis-stream\\[onnx\\]'"):
        export_onnx_bytes(trained_model)
    monkeypatch.setattr("ir2vis_stream.engines.cpu_has_fast_bf16", lambda: False)  # so onnxruntime comes first
    eng = create_engine("auto", trained_model, CPU)
    assert eng.name == "torch" and "skipped onnxruntime: ONNX export needs the onnx package" in eng.reason


def test_torch_fp32_is_the_model(trained_model):
    eng = create_engine("torch", trained_model, CPU, "fp32")
    x = torch.rand(2, 1, 37, 51) * 2 - 1
    assert rel_err(eng(x), trained_model(x).detach()) <= 1e-6


# ---- reduced precision: <= 1 grey level on average and >= 40 dB against fp32 ----------------------------------
@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no native bf16 (AMX/AVX512-BF16)")
def test_eager_bf16_picture_matches_fp32(trained_model):
    """(compile bf16, what auto picks on such CPUs, is judged the same way in the package build test.)"""
    x = image_like(2, 64, 96, seed=7)
    ref = create_engine("torch", trained_model, CPU, "fp32")(x)
    mad, db = picture_diff(create_engine("torch", trained_model, CPU, "bf16")(x), ref)
    assert mad <= 1.0 and db >= 40, (mad, db)


@needs_ort
def test_fp16_onnx_picture_matches_fp32(trained_model):
    """The fp16 graph with fp32 instance norms (TensorRT 11's input), run by ONNX Runtime's CPU kernels."""
    import onnxruntime as ort

    sess = ort.InferenceSession(export_onnx_bytes(trained_model, fp16=True), providers=["CPUExecutionProvider"])
    x = image_like(2, 64, 96, seed=3)
    y = torch.from_numpy(sess.run(None, {"ir": x.half().numpy()})[0])
    mad, db = picture_diff(y, trained_model(x).detach())
    assert mad <= 1.0 and db >= 40, (mad, db)


def test_fp16_onnx_keeps_instance_norm_in_fp32(trained_model):
    proto = check_onnx(export_onnx_bytes(trained_model, fp16=True))
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    F32, F16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    norms = [n for n in inferred.graph.node if n.op_type == "InstanceNormalization"]
    convs = [n for n in inferred.graph.node if n.op_type == "Conv"]
    assert norms and convs
    assert all(types[i] == F32 for n in norms for i in n.input)  # data, scale and bias all fp32
    assert all(types[n.input[0]] == F16 and types[n.input[1]] == F16 for n in convs)
    assert types["ir"] == F16 and types["rgb"] == F16


def test_export_has_dynamic_axes_and_native_ops(trained_model):
    proto = check_onnx(export_onnx_bytes(trained_model))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    ops = {n.op_type for n in proto.graph.node}
    assert {"InstanceNormalization", "Sin", "ConvTranspose"} <= ops
    assert proto.opset_import[0].version >= 17
    # the sines' frequencies and phases are folded into the norms before them (model.fold_sines): no Mul/Add
    producer = {out: n.op_type for n in proto.graph.node for out in n.output}
    sines = [n for n in proto.graph.node if n.op_type == "Sin"]
    assert sines and all(producer[n.input[0]] == "InstanceNormalization" for n in sines)


def test_eager_engines_run_the_folded_sines_and_keep_weights_at_the_compute_precision(trained_model):
    for precision, conv_dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bf16 on a CPU that emulates it
            model = TorchEngine(trained_model, CPU, precision).model
        sines = [m for m in model.modules() if isinstance(m, Sine)]
        assert sines and all(s.folded for s in sines)
        convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        assert convs and all(p.dtype == conv_dtype for c in convs for p in c.parameters())
        norms = [m for m in model.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
        assert norms and all(p.dtype == torch.float32 for n in norms for p in n.parameters())
    # the caller's model is untouched
    assert not any(m.folded for m in trained_model.modules() if isinstance(m, Sine))
    assert all(p.dtype == torch.float32 for p in trained_model.parameters())


def test_one_pass_instance_norm_is_instance_norm_even_for_a_channel_far_from_zero():
    """The package's norm against InstanceNorm2d in fp64: ordinary channels, one at mean 1000 with spread 1
    (plain sums of x and x^2 lose its variance in fp32: off by 0.95 without the shift) and a constant one."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 24, 40, generator=g)
    x[:, 1] = 1000 + x[:, 1]
    x[:, 2] = 3.0
    x[:, 3] = 5 * x[:, 3] - 7
    norm = torch.nn.InstanceNorm2d(4, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.5]))
        norm.bias.copy_(torch.tensor([0.0, 0.3, -1.0, 0.2]))
        ref = norm.double()(x.double())
        y = OnePassInstanceNorm(norm.float())(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    # fp32 holds 1000 + x to 6e-5, times the gain of 2: as close as InstanceNorm2d's own fp32 result gets
    assert (y.double() - ref).abs().max() <= 1e-3


def test_the_package_runs_the_model_with_one_pass_norms(trained_model):
    model = inference_model(trained_model, None, inductor_cpu=True)
    kinds = [type(m) for m in model.modules()]
    assert torch.nn.InstanceNorm2d not in kinds and kinds.count(OnePassInstanceNorm) > 0
    x = image_like(2, 40, 56)
    with torch.no_grad():
        assert rel_err(model(x), trained_model(x)) <= 1e-4


# ---- caches -------------------------------------------------------------------------------------------------
def test_store_and_verify_detect_truncation_and_corruption(tmp_path):
    p = tmp_path / "x.bin"
    cache.store(p, b"hello world")
    assert cache.load_verified(p) == b"hello world"
    p.write_bytes(b"hello")  # truncated
    assert cache.load_verified(p) is None
    cache.store(p, b"hello world")
    p.with_name("x.bin.sha256").write_text("0" * 64)  # mismatched checksum
    assert cache.load_verified(p) is None


def test_concurrent_writers_never_leave_a_broken_file(tmp_path):
    p = tmp_path / "plan"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(p, d)) for d in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.read_bytes() in payloads
    assert [q.name for q in tmp_path.iterdir()] == ["plan"]  # no temporary files left


@needs_ort
def test_corrupt_cached_onnx_is_rebuilt_not_crashed_on(trained_model, tmp_path):
    create_engine("onnxruntime", trained_model, CPU, "fp32")
    (entry,) = (cache.cache_root() / "onnx").glob("*.onnx")
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated by a crash, say
    eng = create_engine("onnxruntime", trained_model, CPU, "fp32")
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    assert rel_err(eng(x), trained_model(x).detach()) <= 1e-4
    assert cache.load_verified(entry) is not None


def test_model_fingerprint_follows_weights():
    a, b = tiny_generator(0), tiny_generator(0)
    assert cache.model_fingerprint(a) == cache.model_fingerprint(b)
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    assert cache.model_fingerprint(a) != cache.model_fingerprint(b)


# ---- TensorRT logic (no TensorRT needed) -------------------------------------------------------------------
def test_tensorrt_profile_pads_to_multiple_and_spans_batches():
    p = trt_logic.profile_for(4, 1, 256, 341)
    assert p.min == (1, 1, 256, 344) and p.opt == p.max == (4, 1, 256, 344)
    assert p.covers((3, 1, 256, 344)) and not p.covers((5, 1, 256, 344)) and not p.covers((1, 1, 264, 344))
    with pytest.raises(ValueError):
        trt_logic.profile_for(0, 1, 8, 8)


def test_tensorrt_plan_key_changes_with_every_input():
    p = trt_logic.profile_for(4, 1, 256, 344)
    base = dict(onnx_bytes=b"model", profile=p, precision="fp16", gpu_name="NVIDIA H100", trt_version="10.9.0")
    k = trt_logic.plan_key(**base)
    assert k == trt_logic.plan_key(**base)
    for change in [dict(onnx_bytes=b"other"), dict(profile=trt_logic.profile_for(8, 1, 256, 344)),
                   dict(precision="fp32"), dict(gpu_name="NVIDIA A100"), dict(trt_version="11.0.0")]:
        assert trt_logic.plan_key(**{**base, **change}) != k, change


def test_tensorrt_precision_goes_into_the_onnx_from_version_11():
    assert trt_logic.onnx_precision_for("11.2.0", "fp16") is True
    assert trt_logic.onnx_precision_for("10.9.0", "fp16") is False  # TensorRT 10: BuilderFlag.FP16
    assert trt_logic.onnx_precision_for("11.2.0", "fp32") is False


def test_plan_cache_builds_once_reuses_and_rebuilds_when_damaged_or_refused():
    builds = []

    def build():
        builds.append(1)
        return b"PLAN-v1"

    def deserialize(data):
        return ("engine", data) if data == b"PLAN-v1" else None  # TensorRT refuses anything else

    e1 = trt_logic.load_or_build_plan("k1", build, deserialize)
    e2 = trt_logic.load_or_build_plan("k1", build, deserialize)
    assert e1 == e2 == ("engine", b"PLAN-v1") and len(builds) == 1
    path = trt_logic.plan_path("k1")
    path.write_bytes(b"PLAN")  # truncated: checksum mismatch
    trt_logic.load_or_build_plan("k1", build, deserialize)
    assert len(builds) == 2
    cache.store(path, b"PLAN-from-another-tensorrt")  # whole but refused by deserialize
    trt_logic.load_or_build_plan("k1", build, deserialize)
    assert len(builds) == 3 and cache.load_verified(path) == b"PLAN-v1"
    trt_logic.load_or_build_plan("k1", build, deserialize, rebuild=True)
    assert len(builds) == 4


def test_tensorrt_creates_its_objects_on_the_engines_gpu(monkeypatch, trained_model):
    """On cuda:1, TensorRT's runtime, engine and context must be made while cuda:1 is the current device (they
    go to the current device). A stand-in TensorRT and CUDA record the current device at each call; nothing of
    this needs a GPU, and the real TensorRT API is not run (it cannot be installed here)."""
    import contextlib
    import sys
    import types

    current = ["cuda:0"]
    seen = {}

    @contextlib.contextmanager
    def cuda_device(dev):
        before, current[0] = current[0], str(torch.device(dev))
        try:
            yield
        finally:
            current[0] = before

    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.3.0"

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    class Engine:
        def create_execution_context(self):
            seen["context"] = current[0]
            return object()

    class Runtime:
        def __init__(self, logger):
            seen["runtime"] = current[0]

        def deserialize_cuda_engine(self, data):
            seen["engine"] = current[0]
            return Engine()

    fake.Logger, fake.Runtime = Logger, Runtime
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(torch.cuda, "device", cuda_device)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev=None: "Stand-in GPU")
    monkeypatch.setattr(torch.cuda, "Stream", lambda dev=None: object())
    monkeypatch.setattr(trt_logic, "cached_onnx", lambda model, fp16, rebuild: b"onnx")
    monkeypatch.setattr(trt_logic, "load_or_build_plan", lambda key, build, deserialize, rebuild: deserialize(b"plan"))
    trt_logic.TensorRTEngine(trained_model, torch.device("cuda", 1), "fp16", batch=2, infer_hw=(32, 32))
    assert seen == {"runtime": "cuda:1", "engine": "cuda:1", "context": "cuda:1"}
    assert current[0] == "cuda:0"  # and the caller's device is current again afterwards


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_missing_is_a_clear_error(trained_model):
    with pytest.raises(EngineUnavailable, match="TensorRT is not installed"):
        create_engine("tensorrt", trained_model, CPU)


# ---- CUDA graphs: what needs no GPU (the capture itself is faked; benchmarks/gpu_check.py runs the real one) ----
class FakeGraphs:
    """``CudaGraphEngine`` with ``_capture`` replaced by an eager stand-in on the CPU: the keying, padding and
    copying around the capture are the real code."""

    @staticmethod
    def make(model, replay_seconds: float = 0.0, eager_seconds: float = 0.0, **kw):
        import time

        from ir2vis_stream.engines.cuda_graphs import CudaGraphEngine, _Graph

        class Engine(CudaGraphEngine):
            captured: list = []

            @staticmethod
            def _check_device(device):
                pass

            def _sync(self):
                pass

            def _eager(self, x):
                time.sleep(eager_seconds)
                return super()._eager(x)

            def _capture(self, n, h, w):
                self.captured.append((n, h, w))
                static_in, out = torch.zeros(n, 1, h, w), torch.zeros(n, 3, h, w)

                def replay():
                    time.sleep(replay_seconds)
                    out.copy_(TorchEngine.__call__(self, static_in))
                return _Graph(static_in, out, replay)

        return Engine(model, CPU, "fp32", **kw)


def test_cuda_graph_needs_a_gpu(trained_model):
    with pytest.raises(EngineUnavailable, match="cuda-graph replays CUDA graphs and needs a CUDA GPU"):
        create_engine("cuda-graph", trained_model, CPU)
    assert "cuda-graph" not in [c[0] for c in auto_candidates(CPU, trained_model)]


def test_cuda_graphs_are_captured_once_per_shape_and_reused_for_smaller_batches(trained_model):
    engine = FakeGraphs.make(trained_model)
    eager = TorchEngine(trained_model, CPU, "fp32")
    x = torch.rand(4, 1, 32, 48) * 2 - 1
    for batch in (x, x, x[:3], x[:1]):  # a video's last batch is smaller: replayed on the batch-4 graph
        y = engine(batch)
        assert y.shape == (len(batch), 3, 32, 48)
        torch.testing.assert_close(y, eager(batch), rtol=0, atol=1e-5)
    assert engine.captured == [(4, 32, 48)]
    engine(x[:2, :, :16])  # a new size: a new graph
    engine(torch.cat([x, x]))  # a larger batch: a new graph
    assert engine.captured == [(4, 32, 48), (2, 16, 48), (8, 32, 48)]
    held = engine(x[:1])
    engine(x[1:2])
    torch.testing.assert_close(held, eager(x[:1]), rtol=0, atol=1e-5)  # a clone, not the graph's static output


@pytest.mark.parametrize("replay_seconds,eager_seconds,stays_graphs", [(0.0, 0.25, True), (0.25, 0.0, False)])  # far beyond a busy machine's noise
def test_auto_keeps_graphs_only_where_they_measure_faster(trained_model, replay_seconds, eager_seconds, stays_graphs):
    engine = FakeGraphs.make(trained_model, replay_seconds, eager_seconds, compare_eager=True)
    engine.reason = "asked for"
    x = torch.rand(2, 1, 16, 16)
    engine(x)
    engine(x)
    assert engine.eager is not stays_graphs
    assert "at batch 2, 16x16" in engine.reason and ("no faster than eager" in engine.reason) is not stays_graphs
    assert ("no faster" in engine.describe()) is not stays_graphs
    if not stays_graphs:
        assert engine.graphs == {}  # their memory is given back


# ---- choosing ------------------------------------------------------------------------------------------------
def test_auto_rule_on_this_machine(trained_model):
    names = [c[0] for c in auto_candidates(CPU, trained_model)]
    assert names[-1] == "torch"
    if cpu_has_fast_bf16():
        assert names[0] == "compile"
    assert [c[0] for c in auto_candidates(CPU, GreyIdentity())] == ["torch"]
    on_cuda = [c[0] for c in auto_candidates(torch.device("cuda"), trained_model)]
    assert on_cuda[-2:] == ["cuda-graph", "torch"]


def test_auto_skips_an_unavailable_backend_and_says_why(trained_model, monkeypatch):
    import ir2vis_stream.engines.torch_engine as te

    monkeypatch.setattr(te, "cxx_compiler", lambda: None)
    with pytest.raises(EngineUnavailable, match="C\\+\\+ compiler"):
        create_engine("compile", trained_model, CPU)
    monkeypatch.setattr("ir2vis_stream.engines.cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr("ir2vis_stream.engines.cxx_compiler", lambda: "/usr/bin/g++")
    eng = create_engine("auto", trained_model, CPU)
    assert eng.name != "compile" and "C++ compiler" in eng.reason


def test_unknown_engine_name(trained_model):
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine("tvm", trained_model, CPU)


# ---- export command -------------------------------------------------------------------------------------------
@needs_ort
def test_cli_export_onnx_runs_in_onnxruntime(tmp_path):
    import onnxruntime as ort

    ck = save_checkpoint(tmp_path / "g.pt", tiny_generator())
    out = tmp_path / "g.onnx"
    r = CliRunner().invoke(main, ["export", "-c", str(ck), "--format", "onnx", "-o", str(out)])
    assert r.exit_code == 0, r.output
    onnx.checker.check_model(onnx.load(str(out)))
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"ir": np.zeros((2, 1, 24, 32), np.float32)})[0]
    assert y.shape == (2, 3, 24, 32)
    r = CliRunner().invoke(main, ["export", "-c", str(ck), "-o", str(out)])
    assert r.exit_code == 1 and "already exists" in r.output


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_cli_export_tensorrt_without_tensorrt(tmp_path):
    ck = save_checkpoint(tmp_path / "g.pt", tiny_generator())
    r = CliRunner().invoke(main, ["export", "-c", str(ck), "--format", "tensorrt", "-o", str(tmp_path / "g.plan")])
    assert r.exit_code == 1 and "Traceback" not in r.output and "TensorRT is not installed" in r.output
    assert not (tmp_path / "g.plan").exists()


def test_precision_names_and_dtypes_round_trip_through_the_one_table():
    from ir2vis_stream.hardware import PRECISIONS, DeviceError, autocast_dtype, precision_name

    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None and autocast_dtype(cpu, "BF16") is torch.bfloat16
    assert [precision_name(d) for d in PRECISIONS.values()] == list(PRECISIONS) == ["fp32", "bf16", "fp16"]
    assert precision_name(autocast_dtype(cpu, "auto")) == ("bf16" if cpu_has_fast_bf16() else "fp32")
    with pytest.raises(DeviceError, match="fp16 is a CUDA precision"):
        autocast_dtype(cpu, "fp16")
    with pytest.raises(DeviceError, match="unknown precision 'int8'"):
        autocast_dtype(cpu, "int8")


def test_bf16_asked_for_on_a_cpu_without_native_bf16_says_it_is_emulated(monkeypatch):
    """On such a CPU (an AVX2-only EPYC, seen here) bf16 training ran its conv gradients on PyTorch's reference path,
    minutes a step; the run still uses what was asked for, but the user is told, once per request."""
    from ir2vis_stream import hardware

    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16.*--precision auto picks fp32 here"):
        assert hardware.autocast_dtype(cpu, "bf16") is torch.bfloat16
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hardware.autocast_dtype(cpu, "bf16") is torch.bfloat16
        assert hardware.autocast_dtype(cpu, "fp32") is None


# ---- the process's allocator ---------------------------------------------------------------------------------
FAULTS = """
import resource, sys, threading, torch
from ir2vis_stream.hardware import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "on" else False
x = torch.ones(1, 64, 512, 640)  # an 80 MiB activation (a 640x512 frame's full-size layer)

def frame():  # six layers, each output a fresh block, the one before it freed
    y = x
    for _ in range(6):
        y = (y * 0.5).relu_()

def measure(out):
    frame()  # the heap grows to its peak
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        frame()
    out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

out = []
if sys.argv[2] == "thread":  # as the pipeline's inference thread
    worker = threading.Thread(target=measure, args=(out,))
    worker.start()
    worker.join()
else:
    measure(out)
print(applied, out[0])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("where", ["main", "thread"])
def test_freed_activations_are_reused_without_page_faults(where):
    """Without it every 80 MiB block comes fresh from the kernel (mmap), 20480 pages, each a fault when written.
    In a thread other than the main one it needs the one-arena setting too: a thread's own arena maps every
    block over 64 MiB afresh, whatever the threshold."""
    import subprocess

    runs = {}
    for mode in ("off", "on"):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode, where], capture_output=True, text=True, check=True)
        applied, faults = out.stdout.split()
        runs[mode] = (applied == "True", int(faults))
    assert runs["off"][1] > 3 * 6 * 20000
    if runs["on"][0]:  # glibc
        # Most runs on the main thread fault no page at all; on an AVX2 EPYC VM (2026-12-07) some refaulted up to 7
        # of the 18 blocks (the kernel took back some of the freed heap). Without it all 18 fault.
        assert runs["on"][1] < runs["off"][1] / 2


@needs_ort
def test_a_generator_with_per_level_widths_runs_in_every_cpu_engine_as_any_other(tmp_path):
    """Narrow fine levels (the fast configuration's form) change channel counts between levels: the folded
    inference model, the ONNX export and a checkpoint round trip keep the function."""
    from ir2vis_stream.checkpoint import load_checkpoint

    torch.manual_seed(0)
    g = MultiScaleGenerator(GeneratorConfig(widths=(4, 8, 8), blocks=(1, 1, 2))).eval()
    with torch.no_grad():  # non-trivial norms and sines, so a wrong fold would show
        for m in g.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.3, 0.3)
            if isinstance(m, Sine):
                m.omega.uniform_(0.7, 1.3), m.theta.uniform_(-0.2, 0.2)
    x = torch.rand(2, 1, 40, 56) * 2 - 1
    ref = g(x).detach()
    assert rel_err(inference_model(g, None)(x).detach(), ref) <= 1e-5
    assert rel_err(inference_model(g, None, inductor_cpu=True)(x).detach(), ref) <= 1e-5  # the one-pass norms
    for engine in ("torch", "onnxruntime"):
        assert rel_err(create_engine(engine, g, CPU, "fp32")(x), ref) <= 1e-4, engine
    back = load_checkpoint(save_checkpoint(tmp_path / "w.pt", g, {"train_size": {"short_side": 32}}))
    assert back.model.config.widths == (4, 8, 8) and rel_err(back.model(x).detach(), ref) <= 1e-6


@needs_ort
def test_with_background_builds_off_no_build_starts_and_auto_moves_on(trained_model, monkeypatch, tmp_path, capsys):
    from ir2vis_stream.cli.options import background_build_notice
    from ir2vis_stream.engines import aot

    monkeypatch.setattr("ir2vis_stream.engines.cpu_has_fast_bf16", lambda: True)  # compile first, as on AVX512-BF16
    monkeypatch.setattr("ir2vis_stream.engines.cxx_compiler", lambda: "/usr/bin/g++")
    started = len(aot._STARTED)
    with pytest.raises(EngineUnavailable, match="background builds are off"):
        create_engine("compile", trained_model, CPU, "fp32", background_build=False)
    eng = create_engine("auto", trained_model, CPU, background_build=False)  # no cached package here
    assert eng.name == "onnxruntime" and "background builds are off" in eng.reason
    monkeypatch.setenv("IR2VIS_STREAM_NO_BACKGROUND_BUILD", "1")
    with pytest.raises(EngineUnavailable, match="background builds are off"):
        create_engine("compile", trained_model, CPU, "fp32")
    assert len(aot._STARTED) == started  # nothing was started
    # a build that outlives the command is named in one line, with how to skip it
    background_build_notice()
    assert capsys.readouterr().err == ""

    class Running:
        process, log_path = type("P", (), {"pid": 4242})(), tmp_path / "build.log"

        def poll(self):
            return None
    monkeypatch.setattr(aot, "_STARTED", [Running()])
    background_build_notice()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pid 4242" in err and str(tmp_path / "build.log") in err
    assert "--no-background-build" in err and "IR2VIS_STREAM_NO_BACKGROUND_BUILD=1" in err
    monkeypatch.setattr(aot, "_STARTED", [])  # the stand-in is no process for the suite's clean-up to stop


def test_run_passes_no_background_build_down_to_the_compile_engine(tmp_path):
    from conftest import make_video

    ck = save_checkpoint(tmp_path / "tiny.pt", tiny_generator(), {"train_size": {"short_side": 32}})
    clip = make_video(tmp_path / "in.mp4", frames=2)
    r = CliRunner().invoke(main, ["run", str(clip), "-o", str(tmp_path / "out.mp4"), "-c", str(ck), "--engine", "compile",
                                  "--precision", "fp32", "--no-background-build", "-q"])
    assert r.exit_code == 1 and "background builds are off" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out.mp4").exists()
