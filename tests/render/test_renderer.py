"""MeshRenderer: compositing, gradients through the whole pipeline, settings, backends, CUDA parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from augane.errors import ConfigError
from augane.flame.camera import project
from augane.render import MeshRenderer, RenderSettings, default_light, rasterize


def sphere(subdivisions: int = 2, radius: float = 0.1, dtype=torch.float32):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.tensor(mesh.vertices, dtype=dtype)[None] * radius, torch.tensor(mesh.faces)


def test_compositing_over_a_background_image() -> None:
    vertices, faces = sphere()
    vertices = vertices.repeat(2, 1, 1)
    cam = torch.tensor([[8.0, 0.0, 0.0], [6.0, 0.03, -0.02]])
    background = torch.rand(2, 3, 20, 24, requires_grad=True)
    renderer = MeshRenderer(faces, RenderSettings(image_size=(20, 24)))
    out = renderer(vertices, cam, light=default_light(2), background=background)
    mask = out.mask
    assert mask.shape == (2, 1, 20, 24) and 0 < float(mask.mean()) < 1
    assert torch.equal(out.mask[:, 0] > 0, out.fragments.mask)
    torch.testing.assert_close(out.image * (1 - mask), background.detach() * (1 - mask))
    face_only = renderer(vertices, cam, light=default_light(2)).image
    torch.testing.assert_close(out.image * mask, face_only * mask)
    assert float(face_only[(mask == 0).expand_as(face_only)].abs().max()) == 0.0
    out.image.sum().backward()
    torch.testing.assert_close(background.grad, (1 - mask).expand_as(background))
    assert float(out.image.detach().min()) >= 0.0 and float(out.image.detach().max()) <= 1.0


def test_background_colour_setting() -> None:
    vertices, faces = sphere()
    out = MeshRenderer(faces, RenderSettings(image_size=16, background_color=(0.2, 0.4, 0.6)))(vertices, torch.tensor([[8.0, 0, 0]]))
    torch.testing.assert_close(out.image[0, :, 0, 0], torch.tensor([0.2, 0.4, 0.6]))


def test_gradient_reaches_every_visible_vertex_and_no_hidden_one() -> None:
    vertices, faces = sphere(subdivisions=2)
    vertices = vertices.clone().requires_grad_(True)
    albedo = torch.rand(1, vertices.shape[1], 3, requires_grad=True)
    renderer = MeshRenderer(faces, RenderSettings(image_size=48, shading="albedo"))
    out = renderer(vertices, torch.tensor([[8.0, 0.0, 0.0]]), albedo=albedo)
    weights = torch.rand(out.image.shape, generator=torch.Generator().manual_seed(0))
    (out.image * weights).sum().backward()
    visible_faces = out.fragments.face_index[out.fragments.mask].unique()
    visible = torch.zeros(vertices.shape[1], dtype=torch.bool)
    visible[faces[visible_faces].reshape(-1)] = True
    moved = vertices.grad[0].abs().sum(-1) > 0
    coloured = albedo.grad[0].abs().sum(-1) > 0
    assert visible.sum() > 10 and (~visible).sum() > 10
    assert torch.equal(moved, visible)
    assert torch.equal(coloured, visible)


def test_full_render_gradients_match_finite_differences() -> None:
    vertices, faces = sphere(subdivisions=1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    vertices = vertices + 0.003 * torch.randn(vertices.shape, generator=generator, dtype=torch.float64)
    albedo = torch.rand(1, vertices.shape[1], 3, generator=generator, dtype=torch.float64)
    light = default_light(1, dtype=torch.float64) + 0.1 * torch.randn(1, 9, 3, generator=generator, dtype=torch.float64)
    cam = torch.tensor([[8.0, 0.01, -0.02]], dtype=torch.float64)
    renderer = MeshRenderer(faces, RenderSettings(image_size=10, clamp=False))
    reference = renderer.rasterize(vertices, cam).face_index

    def render(v, a, l, c):
        out = renderer(v, c, albedo=a, light=l)
        assert torch.equal(out.fragments.face_index, reference)
        return out.image

    inputs = tuple(t.clone().requires_grad_(True) for t in (vertices, albedo, light, cam))
    assert torch.autograd.gradcheck(render, inputs, eps=1e-7, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_auxiliary_images_and_depth() -> None:
    vertices, faces = sphere(subdivisions=3)
    out = MeshRenderer(faces, RenderSettings(image_size=32))(vertices, torch.tensor([[8.0, 0, 0]]), light=default_light(1))
    covered = out.fragments.mask[0]
    normals = out.normal_images[0].permute(1, 2, 0)[covered]
    assert float(normals[:, 2].min()) > 0  # the visible half faces the camera (+z)
    torch.testing.assert_close(out.image[0], (out.albedo_images[0] * out.shading_images[0]).clamp(0, 1))
    # Depth of the front surface: z_n = -s * Z, nearest (most negative) at the centre.
    assert float(out.fragments.depth[0, 16, 16]) == pytest.approx(-0.8, abs=0.02)


def test_renderer_uses_the_one_camera_projection() -> None:
    vertices, faces = sphere()
    cam = torch.tensor([[5.0, 0.02, 0.05]])
    fragments = MeshRenderer(faces, RenderSettings(image_size=24)).rasterize(vertices, cam)
    direct = rasterize(project(vertices, cam), faces, 24)
    assert torch.equal(fragments.face_index, direct.face_index)


def test_settings_validation_and_config_section() -> None:
    with pytest.raises(ConfigError, match="shading 'phong'"):
        RenderSettings(shading="phong")
    with pytest.raises(ConfigError, match="backend 'opengl'"):
        RenderSettings(backend="opengl")
    with pytest.raises(ValueError, match="image size"):
        RenderSettings(image_size=0)
    settings = RenderSettings.from_config({"shading": "shape", "backend": "augane", "background_color": [1, 1, 1]}, image_size=(10, 12))
    assert settings.image_size == (10, 12) and settings.shading == "shape" and settings.background_color == (1.0, 1.0, 1.0)


def test_bad_renderer_inputs() -> None:
    vertices, faces = sphere()
    renderer = MeshRenderer(faces, RenderSettings(image_size=8))
    with pytest.raises(ValueError, match="cam must be \\(B, 3\\)"):
        renderer(vertices, torch.tensor([8.0, 0, 0]))
    with pytest.raises(ValueError, match="per-vertex albedo must be"):
        renderer(vertices, torch.tensor([[8.0, 0, 0]]), albedo=torch.rand(1, 5, 3))
    with pytest.raises(ValueError, match="background must be"):
        renderer(vertices, torch.tensor([[8.0, 0, 0]]), background=torch.rand(1, 3, 9, 8))
    with pytest.raises(ValueError, match="faces index vertices"):
        renderer(vertices[:, :10], torch.tensor([[8.0, 0, 0]]))


def test_selecting_pytorch3d_without_it_raises_a_clear_error(monkeypatch) -> None:
    from augane.render import pytorch3d_backend

    monkeypatch.setattr(pytorch3d_backend, "pytorch3d_available", lambda: False)
    with pytest.raises(ConfigError, match="pytorch3d cannot be imported.*'augane'"):
        MeshRenderer(torch.tensor([[0, 1, 2]]), RenderSettings(backend="pytorch3d"))


class _StubMeshes:
    """Stand-in for ``pytorch3d.structures.Meshes`` (lists of per-mesh tensors)."""

    def __init__(self, verts, faces):
        self.verts, self.faces = verts, faces


def _stub_rasterize_meshes(meshes, image_size, blur_radius, faces_per_pixel, bin_size, max_faces_per_bin, perspective_correct):
    """pytorch3d's documented conventions, naively: +X left, +Y up, the shorter side spans [-1, 1],
    pixel (row i, column j) centre at ``pix_to_non_square_ndc(W - 1 - j, W, H)``, ``(H - 1 - i, H, W)``;
    nearest z wins; ``pix_to_face`` indexes the packed faces."""
    height, width = image_size

    def ndc(index, size, other):
        span = 2.0 * max(size / other, 1.0)
        return -span / 2 + (span * index + span / 2) / size

    batch = len(meshes.verts)
    pix_to_face = torch.full((batch, height, width, 1), -1, dtype=torch.int64)
    bary = torch.zeros(batch, height, width, 1, 3)
    zbuf = torch.full((batch, height, width, 1), float("inf"))
    offset = 0
    for b, (verts, faces) in enumerate(zip(meshes.verts, meshes.faces)):
        for f, (i0, i1, i2) in enumerate(faces.tolist()):
            (ax, ay, az), (bx, by, bz), (cx, cy, cz) = verts[i0].tolist(), verts[i1].tolist(), verts[i2].tolist()
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if area == 0:
                continue
            for i in range(height):
                py = ndc(height - 1 - i, height, width)
                for j in range(width):
                    px = ndc(width - 1 - j, width, height)
                    w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / area
                    w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / area
                    w2 = 1 - w0 - w1
                    if min(w0, w1, w2) < 0:
                        continue
                    z = w0 * az + w1 * bz + w2 * cz
                    if z < zbuf[b, i, j, 0]:
                        zbuf[b, i, j, 0] = z
                        pix_to_face[b, i, j, 0] = offset + f
                        bary[b, i, j, 0] = torch.tensor([w0, w1, w2])
        offset += faces.shape[0]
    return pix_to_face, zbuf, bary, None


def test_pytorch3d_adapter_converts_coordinates_like_decas_rasterizer(monkeypatch) -> None:
    """The adapter, run against a stand-in that follows pytorch3d's documented conventions, gives AUGANE's fragments."""
    import sys
    import types

    from augane.render import pytorch3d_backend

    structures = types.ModuleType("pytorch3d.structures")
    structures.Meshes = _StubMeshes
    mesh_module = types.ModuleType("pytorch3d.renderer.mesh")
    mesh_module.rasterize_meshes = _stub_rasterize_meshes
    for name, module in {
        "pytorch3d": types.ModuleType("pytorch3d"),
        "pytorch3d.structures": structures,
        "pytorch3d.renderer": types.ModuleType("pytorch3d.renderer"),
        "pytorch3d.renderer.mesh": mesh_module,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    assert pytorch3d_backend.pytorch3d_available()
    vertices, faces = sphere(subdivisions=1)
    vertices = vertices.repeat(2, 1, 1)
    cam = torch.tensor([[7.0, 0.01, 0.0], [5.0, -0.02, 0.03]])
    ours = MeshRenderer(faces, RenderSettings(image_size=(9, 14)))
    theirs = MeshRenderer(faces, RenderSettings(image_size=(9, 14), backend="pytorch3d"))
    a, b = ours.rasterize(vertices, cam), theirs.rasterize(vertices, cam)
    assert torch.equal(a.face_index, b.face_index)
    torch.testing.assert_close(a.bary, b.bary, atol=1e-4, rtol=0)
    image = theirs(vertices, cam, light=default_light(2)).image
    torch.testing.assert_close(image, ours(vertices, cam, light=default_light(2)).image, atol=1e-4, rtol=0)


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    generator = torch.Generator().manual_seed(0)
    mesh = trimesh.creation.icosphere(subdivisions=4)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)[None].repeat(4, 1, 1) * 0.1
    vertices = vertices + 0.002 * torch.randn(vertices.shape, generator=generator)
    faces = torch.tensor(mesh.faces)
    cam = torch.tensor([[8.0, 0.0, 0.0], [7.0, 0.02, 0.01], [9.0, -0.01, 0.0], [6.0, 0.0, 0.03]])
    albedo = torch.rand(4, vertices.shape[1], 3, generator=generator)
    light = default_light(4)
    background = torch.rand(4, 3, 96, 80, generator=generator)
    outputs = {}
    for device in ("cpu", "cuda"):
        renderer = MeshRenderer(faces, RenderSettings(image_size=(96, 80))).to(device)
        v = vertices.to(device).requires_grad_(True)
        out = renderer(v, cam.to(device), albedo=albedo.to(device), light=light.to(device), background=background.to(device))
        out.image.square().sum().backward()
        outputs[device] = (out.fragments.face_index.cpu(), out.image.detach().cpu(), v.grad.cpu())
    face_cpu, image_cpu, grad_cpu = outputs["cpu"]
    face_gpu, image_gpu, grad_gpu = outputs["cuda"]
    assert float((face_cpu != face_gpu).float().mean()) < 1e-4
    same = face_cpu == face_gpu
    torch.testing.assert_close(image_gpu.permute(0, 2, 3, 1)[same], image_cpu.permute(0, 2, 3, 1)[same], atol=1e-4, rtol=0)
    np.testing.assert_allclose(grad_gpu.numpy(), grad_cpu.numpy(), atol=1e-3 * float(grad_cpu.abs().max()))
