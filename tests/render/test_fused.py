"""Compiled rasteriser kernels: bit-identical to eager, exact on shared edges, and a safe fallback."""

from __future__ import annotations

import logging

import pytest
import torch

from augane.config import validate_config
from augane.flame.camera import project
from augane.render import fused as fused_module
from augane.render import interpolate, rasterize
from augane.render import renderer as renderer_module
from augane.render.fused import FusedKernel
from augane.render.renderer import MeshRenderer, RenderSettings
from tests.render.test_rasterize import grid_mesh, random_scene


def _same_fragments(a, b) -> None:
    assert torch.equal(a.pixels, b.pixels)
    assert torch.equal(a.packed_faces, b.packed_faces)
    assert torch.equal(a.packed_bary, b.packed_bary)


@pytest.mark.parametrize("cull", [False, True])
def test_fused_rasteriser_equals_eager_bit_for_bit(cull) -> None:
    vertices, faces = random_scene(3, batch=3, num_vertices=60, num_faces=120)
    for size in ((40, 40), (33, 57)):  # a second size runs the same compiled kernels (dynamic shapes)
        eager = rasterize(vertices, faces, size, cull_backfaces=cull)
        fused = rasterize(vertices, faces, size, cull_backfaces=cull, fused=True)
        _same_fragments(eager, fused)
    # Candidates in many small chunks (a chunk starting inside a pass) give the same fragments too.
    chunked = rasterize(vertices, faces, (40, 40), cull_backfaces=cull, fused=True, chunk_elements=7)
    _same_fragments(rasterize(vertices, faces, (40, 40), cull_backfaces=cull, chunk_elements=7), chunked)
    _same_fragments(rasterize(vertices, faces, (40, 40), cull_backfaces=cull), chunked)


def test_fused_rasteriser_keeps_shared_edges_exact_and_gradients_equal() -> None:
    vertices, faces = grid_mesh(4, 5, 16, 32)
    coverage = rasterize(vertices, faces, (16, 32), fused=True).face_index[0]
    assert torch.equal(coverage, rasterize(vertices, faces, (16, 32)).face_index[0])
    assert int((coverage[:12, :15] >= 0).sum()) == 12 * 15  # every pixel centre of the grid, once

    scene, faces = random_scene(5, batch=2, num_vertices=40, num_faces=70)
    colours = torch.rand(2, 40, 3)
    weights = torch.rand(2, 24, 24, 3)
    grads = []
    for fused in (False, True):
        v, c = scene.clone().requires_grad_(True), colours.clone().requires_grad_(True)
        interpolate(rasterize(v, faces, 24, fused=fused), c).backward(weights)
        grads.append((v.grad, c.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


@pytest.mark.parametrize("fused", [False, True])
def test_gradients_asked_for_one_input_equal_those_of_the_full_backward(fused) -> None:
    scene, faces = random_scene(6, batch=2, num_vertices=40, num_faces=70)
    colours = torch.rand(2, 40, 3)
    weights = torch.rand(2, 24, 24, 3)

    def gradients(vertices_grad: bool, colours_grad: bool):
        v, c = scene.clone().requires_grad_(vertices_grad), colours.clone().requires_grad_(colours_grad)
        interpolate(rasterize(v, faces, 24, fused=fused), c).backward(weights)
        return v.grad, c.grad

    both = gradients(True, True)
    assert torch.equal(gradients(True, False)[0], both[0])
    assert torch.equal(gradients(False, True)[1], both[1])

def test_renderer_setting_and_config_key_select_the_fused_kernels(monkeypatch) -> None:
    section = validate_config({"render": {"fused_kernels": True}})["render"]
    settings = RenderSettings.from_config(section, image_size=32)
    assert settings.fused_kernels and not RenderSettings().fused_kernels
    asked = []

    def spy(*args, **kwargs):
        asked.append(kwargs["fused"])
        return rasterize(*args, **kwargs)

    monkeypatch.setattr(renderer_module, "rasterize", spy)
    vertices, faces = random_scene(7, batch=1, num_vertices=30, num_faces=40)
    cam = torch.tensor([[1.0, 0.0, 0.0]])
    fragments = MeshRenderer(faces, settings).rasterize(vertices, cam)
    assert asked == [True]
    _same_fragments(fragments, rasterize(project(vertices, cam), faces, 32))


def _double_plus_one(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 + 1.0


def test_kernel_falls_back_to_eager_once_when_compiling_fails(monkeypatch, caplog) -> None:
    class CompileFailure(Exception):
        pass

    CompileFailure.__module__ = "torch._inductor.exc"  # where Inductor's own errors come from
    calls = []

    def failing_compile(function, dynamic):
        def run(*args):
            calls.append(args)
            raise CompileFailure("no working C++ compiler")

        return run

    monkeypatch.setattr(fused_module.torch, "compile", failing_compile)
    kernel = FusedKernel(_double_plus_one)
    x = torch.arange(4.0)
    with caplog.at_level(logging.WARNING, logger="augane.render.fused"):
        assert torch.equal(kernel(x, fused=True, device=x.device), x * 2.0 + 1.0)
        assert torch.equal(kernel(x, fused=True, device=x.device), x * 2.0 + 1.0)
    assert len(calls) == 1  # not compiled again after the failure
    assert "_double_plus_one" in caplog.text and "runs eager" in caplog.text


def test_kernel_errors_from_the_inputs_are_not_hidden(monkeypatch) -> None:
    def compile_passthrough(function, dynamic):
        return function

    monkeypatch.setattr(fused_module.torch, "compile", compile_passthrough)
    kernel = FusedKernel(lambda x: x.view(3, 5))
    with pytest.raises(RuntimeError, match="shape"):
        kernel(torch.zeros(4), fused=True, device=torch.device("cpu"))


def test_kernel_runs_eager_off_cpu_and_when_not_asked(monkeypatch) -> None:
    def no_compiling(function, dynamic):
        raise AssertionError("must not compile")

    monkeypatch.setattr(fused_module.torch, "compile", no_compiling)
    kernel = FusedKernel(_double_plus_one)
    x = torch.arange(3.0)
    assert torch.equal(kernel(x, fused=True, device=torch.device("cuda")), x * 2.0 + 1.0)
    assert torch.equal(kernel(x, fused=False, device=x.device), x * 2.0 + 1.0)


def test_eager_variants_compute_the_same_bits_as_the_compiled_definitions(monkeypatch) -> None:
    """Each kernel's eager variant equals its compiled definition run op by op (compiling aside)."""
    from augane.render import interpolation as interpolation_module
    from augane.render import rasterizer as rasterizer_module

    kernels = [rasterizer_module._SELECT_TRAPEZOIDS, rasterizer_module._WINNERS,
               rasterizer_module._PIXEL_BARYCENTRICS, rasterizer_module._SCATTER_PIXELS,
               rasterizer_module._GATHER_PIXELS, interpolation_module._INTERPOLATE]
    calls = {kernel.name: [] for kernel in kernels}

    def compile_passthrough(function, dynamic):
        def run(*args):
            calls[function.__name__].append(args)
            return function(*args)

        return run

    monkeypatch.setattr(fused_module.torch, "compile", compile_passthrough)
    for kernel in kernels:
        monkeypatch.setattr(kernel, "_compiled", None)
    vertices, faces = random_scene(11, batch=2, num_vertices=50, num_faces=90)
    colours = torch.rand(2, 50, 3, requires_grad=True)
    interpolate(rasterize(vertices, faces, 30, fused=True), colours).backward(torch.rand(2, 30, 30, 3))
    for kernel in kernels:
        assert calls[kernel.name], f"{kernel.name} did not run"
        for args in calls[kernel.name]:
            args = [arg.detach() if isinstance(arg, torch.Tensor) else arg for arg in args]
            compiled_outputs, eager_outputs = kernel.compiled_function(*args), kernel.function(*args)
            if isinstance(compiled_outputs, torch.Tensor):
                compiled_outputs, eager_outputs = (compiled_outputs,), (eager_outputs,)
            assert len(compiled_outputs) == len(eager_outputs), kernel.name
            for compiled_output, eager_output in zip(compiled_outputs, eager_outputs):
                assert torch.equal(compiled_output, eager_output), kernel.name
