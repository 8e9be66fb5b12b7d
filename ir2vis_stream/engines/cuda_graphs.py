"""The eager model replayed as CUDA graphs: one capture per (batch, H, W), a few seconds, no inductor build.

Eager PyTorch launches every one of the model's few thousand kernels from Python on every call; at small and
medium frame sizes on a fast GPU the launches, not the kernels, set the speed. A CUDA graph records the
launches once and replays them with one call (``torch.cuda.CUDAGraph``; the same idea as vs-mlrt's
``use_cuda_graph``). Capture follows PyTorch's rules: a few warm-up calls on a side stream (cuDNN picks its
algorithms, the allocator grows), then one call recorded into a graph whose memory comes from a pool shared by
all of this engine's graphs. Inputs are copied into the graph's static input and the output cloned out of its
static output (the next replay overwrites it).

Shapes: each (batch, H, W) is captured once, on first use. A batch smaller than one already captured at the
same H and W (the last batch of a video) replays the larger graph with the spare rows left as they are: every
frame's output depends on that frame alone (instance norm, convolutions), so the rows that are returned are
exact.

``compare_eager`` (what ``auto`` uses): the first shape is timed both ways, and when the graphs are not
faster the engine stays eager from then on; ``reason`` says which and by how much.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .base import EngineUnavailable
from .torch_engine import TorchEngine

__all__ = ["CudaGraphEngine"]


@dataclass
class _Graph:
    input: torch.Tensor  # the static input the graph reads: (n, 1, H, W)
    output: torch.Tensor  # the static output it writes: (n, 3, H, W)
    replay: Callable[[], None]


class CudaGraphEngine(TorchEngine):
    """``TorchEngine`` whose calls replay CUDA graphs; see the module docstring."""

    name = "cuda-graph"

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto", *, warmup: int = 3,
                 compare_eager: bool = False, log: Callable[[str], None] | None = None):
        self._check_device(torch.device(device))
        super().__init__(model, device, precision)
        self.warmup = warmup
        self.compare_eager = compare_eager
        self.log = log or (lambda message: None)
        self.graphs: dict[tuple[int, int, int], _Graph] = {}
        self.eager = False  # True once ``compare_eager`` found eager at least as fast
        self._pool = None

    @staticmethod
    def _check_device(device: torch.device) -> None:
        if device.type != "cuda":
            raise EngineUnavailable(f"cuda-graph replays CUDA graphs and needs a CUDA GPU (this run is on {device})")
        if not torch.cuda.is_available():
            raise EngineUnavailable("cuda-graph needs a CUDA GPU and PyTorch sees none")

    def describe(self) -> str:
        return super().describe() + (" (eager: graphs measured no faster)" if self.eager else "")

    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        return TorchEngine.__call__(self, x)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.eager:
            return self._eager(x)
        n, _, h, w = x.shape
        first = not self.graphs
        graph = self._graph_for(n, h, w)
        if first and self.compare_eager and not self._graphs_are_faster(graph, x):
            self.eager = True
            self.graphs.clear()  # their memory goes back to the allocator
            return self._eager(x)
        graph.input[:n].copy_(x)
        graph.replay()
        return graph.output[:n].clone()

    def _graph_for(self, n: int, h: int, w: int) -> _Graph:
        """The graph for (n, h, w): captured exactly, else the smallest larger batch at (h, w), else a new one."""
        graph = self.graphs.get((n, h, w))
        if graph is not None:
            return graph
        larger = sorted(m for (m, gh, gw) in self.graphs if (gh, gw) == (h, w) and m > n)
        if larger:
            return self.graphs[(larger[0], h, w)]
        t = time.perf_counter()
        graph = self.graphs[(n, h, w)] = self._capture(n, h, w)
        self.log(f"cuda-graph: captured batch {n} at {w}x{h} in {time.perf_counter() - t:.1f} s")
        return graph

    def _capture(self, n: int, h: int, w: int) -> _Graph:
        """Warm up on a side stream, then record one call (PyTorch's recipe for ``torch.cuda.graph``)."""
        with torch.cuda.device(self.device):
            static_in = torch.zeros((n, 1, h, w), device=self.device)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self._eager(static_in)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                static_out = self._eager(static_in)
            self._pool = graph.pool()
        return _Graph(static_in, static_out, graph.replay)

    def _sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def _graphs_are_faster(self, graph: _Graph, x: torch.Tensor, calls: int = 5) -> bool:
        """Time ``calls`` replays against as many eager calls on ``x``; note the result in ``reason``."""
        n = x.shape[0]

        def timed(fn) -> float:
            fn()
            self._sync()
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            self._sync()
            return (time.perf_counter() - t) / calls

        def replay():
            graph.input[:n].copy_(x)
            graph.replay()

        graphs, eager = timed(replay), timed(lambda: self._eager(x))
        faster = graphs < eager
        verdict = (f"CUDA graphs {eager / graphs:.2f}x eager" if faster
                   else f"CUDA graphs measured no faster than eager ({eager / graphs:.2f}x): eager")
        note = f"{verdict} at batch {n}, {x.shape[3]}x{x.shape[2]} ({graphs * 1e3:.1f} vs {eager * 1e3:.1f} ms)"
        self.reason = f"{getattr(self, 'reason', 'asked for')}; {note}"
        self.log(f"cuda-graph: {note}")
        return faster
