"""The rasteriser against a naive per-pixel reference, tie rules, watertightness, gradients, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import ConvexHull, Delaunay

from augane.flame.camera import project
from augane.render.rasterizer import _barycentric_coefficients, _Barycentrics, rasterize
from tests.render.reference import naive_rasterize


def random_scene(seed: int, batch: int = 2, num_vertices: int = 24, num_faces: int = 30, dtype=torch.float32):
    """Random triangles, many partly or wholly outside [-1, 1], both windings, plus degenerate faces."""
    generator = torch.Generator().manual_seed(seed)
    vertices = (torch.rand(batch, num_vertices, 3, generator=generator) * 2.6 - 1.3).to(dtype)
    chosen: dict[frozenset, torch.Tensor] = {}
    while len(chosen) < num_faces:  # distinct triangles (coincident faces would tie in depth)
        corners = torch.randperm(num_vertices - 3, generator=generator)[:3]
        chosen.setdefault(frozenset(corners.tolist()), corners)
    faces = torch.stack(list(chosen.values()))
    degenerate = torch.tensor([[0, 0, 1], [2, 3, 3]])
    faces = torch.cat([faces, degenerate])
    # A collinear face: its third vertex is the midpoint of the first two in every image.
    vertices[:, -1] = (vertices[:, -2] + vertices[:, -3]) / 2
    faces = torch.cat([faces, torch.tensor([[num_vertices - 3, num_vertices - 2, num_vertices - 1]])])
    return vertices, faces


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [(20, 20), (17, 26)])
def test_matches_naive_reference(seed: int, size: tuple[int, int]) -> None:
    vertices, faces = random_scene(seed)
    fragments = rasterize(vertices, faces, size)
    ref_face, ref_bary, ref_depth = naive_rasterize(vertices.numpy(), faces.numpy(), *size)
    np.testing.assert_array_equal(fragments.face_index.numpy(), ref_face)
    covered = ref_face >= 0
    assert covered.any() and (~covered).any()
    np.testing.assert_allclose(fragments.bary.detach().numpy()[covered], ref_bary[covered], atol=1e-5)
    np.testing.assert_allclose(fragments.depth.detach().numpy()[covered], ref_depth[covered], atol=1e-5)
    assert np.isinf(fragments.depth.numpy()[~covered]).all()
    np.testing.assert_array_equal(fragments.mask.numpy(), covered)
    assert fragments.face_index.dtype == torch.int64


def test_chunking_and_float64_give_the_same_fragments() -> None:
    vertices, faces = random_scene(3, batch=3, num_faces=60)
    reference = rasterize(vertices, faces, 24)
    tiny_chunks = rasterize(vertices, faces, 24, chunk_elements=5)
    double = rasterize(vertices.double(), faces, 24)
    assert torch.equal(tiny_chunks.face_index, reference.face_index)
    assert torch.equal(double.face_index, reference.face_index)
    torch.testing.assert_close(double.bary.float(), reference.bary, atol=1e-5, rtol=0)


def grid_mesh(rows: int, cols: int, height: int, width: int, step: int = 3):
    """A planar quad grid with corners on pixel centres and diagonals through pixel centres (exact ties)."""
    xs = 0.5 + step * np.arange(cols + 1)
    ys = 0.5 + step * np.arange(rows + 1)
    px, py = np.meshgrid(xs, ys)
    vertices = np.stack([px / width * 2 - 1, py / height * 2 - 1, np.zeros_like(px)], -1).reshape(-1, 3)
    faces = []
    for i in range(rows):
        for j in range(cols):
            a, b, c, d = i * (cols + 1) + j, i * (cols + 1) + j + 1, (i + 1) * (cols + 1) + j, (i + 1) * (cols + 1) + j + 1
            faces += [[a, b, d], [a, d, c]] if (i + j) % 2 else [[a, b, c], [b, d, c]]
    return torch.tensor(vertices, dtype=torch.float32)[None], torch.tensor(faces)


def coverage_counts(vertices: torch.Tensor, faces: torch.Tensor, size) -> torch.Tensor:
    """How many faces claim each pixel centre, rasterising one face at a time."""
    counts = None
    for face in faces:
        mask = rasterize(vertices, face[None], size).mask.long()
        counts = mask if counts is None else counts + mask
    return counts[0]


def test_shared_edges_and_vertices_on_pixel_centres_belong_to_exactly_one_face() -> None:
    # Power-of-two image sides keep the pixel <-> normalised round trip exact.
    vertices, faces = grid_mesh(4, 5, 16, 32)  # covers pixel centres [0.5, 15.5] x [0.5, 12.5]
    counts = coverage_counts(vertices, faces, (16, 32))
    # Half-open ownership: the grid's left and top borders are in, its right and bottom borders out.
    assert torch.equal(counts[:12, :15], torch.ones(12, 15, dtype=torch.long))
    assert int(counts[12:].sum()) == 0 and int(counts[:, 15:].sum()) == 0
    ref_face, _, _ = naive_rasterize(vertices.numpy(), faces.numpy(), 16, 32)
    np.testing.assert_array_equal(rasterize(vertices, faces, (16, 32)).face_index[0].numpy(), ref_face[0])


def test_a_fan_around_a_vertex_on_a_pixel_centre_covers_it_once() -> None:
    centre = np.array([5.5, 5.5])
    angles = np.linspace(0, 2 * np.pi, 9)[:-1] + 0.3
    ring = centre + 4.0 * np.stack([np.cos(angles), np.sin(angles)], -1)
    points = np.concatenate([centre[None], ring])
    vertices = torch.tensor(np.concatenate([points / 16 * 2 - 1, np.zeros((9, 1))], 1), dtype=torch.float32)[None]
    faces = torch.tensor([[0, 1 + k, 1 + (k + 1) % 8] if k % 2 else [0, 1 + (k + 1) % 8, 1 + k] for k in range(8)])
    counts = coverage_counts(vertices, faces, 16)
    assert int(counts[5, 5]) == 1
    assert int(counts.max()) == 1


@pytest.mark.parametrize("seed", range(6))
def test_closed_mesh_covers_its_silhouette_without_holes(seed: int) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    rotation = torch.tensor(trimesh.transformations.random_rotation_matrix(np.random.default_rng(seed).random(3))[:3, :3])
    vertices = (torch.tensor(sphere.vertices) @ rotation.T).float()[None] * 0.1
    faces = torch.tensor(sphere.faces)
    cam = torch.tensor([[8.5, 0.01 * seed, -0.003 * seed]])
    screen = project(vertices, cam)
    size = (40, 48)
    fragments = rasterize(screen, faces, size)
    # Every pixel centre strictly inside the silhouette (the projected convex hull) is covered.
    # The sphere is convex: its silhouette is the convex hull of the projected vertices.
    xy = ((screen[0, :, :2].numpy() + 1.0) * np.array([size[1], size[0]]) / 2.0)
    outline = Delaunay(xy[ConvexHull(xy).vertices])
    cols, rows = np.meshgrid(np.arange(size[1]) + 0.5, np.arange(size[0]) + 0.5)
    centres = np.stack([cols, rows], -1).reshape(-1, 2)
    inside = (outline.find_simplex(centres) >= 0).reshape(size)
    covered = fragments.mask[0].numpy()
    assert not (inside & ~covered).any()
    # Front faces only: every covered pixel is still covered (the back never shows), and nothing else is.
    culled = rasterize(screen, faces, size, cull_backfaces=True)
    assert torch.equal(culled.mask, fragments.mask)
    normals = torch.tensor(sphere.face_normals).float() @ rotation.T.float()
    visible_faces = culled.face_index[culled.mask]
    assert (normals[visible_faces, 2] > 0).all()


def test_nearer_face_occludes_and_culling_follows_the_winding() -> None:
    square = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    near = torch.cat([square, torch.full((4, 1), -0.2)], 1)
    far = torch.cat([square * 1.5, torch.full((4, 1), 0.3)], 1)
    vertices = torch.cat([far, near])[None]
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    fragments = rasterize(vertices, faces, 16)
    centre = fragments.face_index[0, 6:10, 6:10]
    assert set(centre.unique().tolist()) <= {2, 3}
    border = fragments.face_index[0, 2, 2:14]
    assert set(border.unique().tolist()) <= {0, 1}
    torch.testing.assert_close(fragments.depth[0, 8, 8], torch.tensor(-0.2))
    # (x right, y down) counter-clockwise on screen = model normal pointing away from the viewer: culled.
    assert not rasterize(vertices, faces, 16, cull_backfaces=True).mask.any()
    assert rasterize(vertices, faces.flip(1), 16, cull_backfaces=True).mask.sum() == fragments.mask.sum()


def test_faces_outside_the_image_leave_it_empty_and_large_faces_are_clipped() -> None:
    vertices = torch.tensor([[[2.0, 2.0, 0.0], [3.0, 2.0, 0.0], [2.0, 3.0, 0.0], [-9, -9, 0], [9, -9, 0], [0, 9, 0]]])
    assert not rasterize(vertices, torch.tensor([[0, 1, 2]]), 12).mask.any()
    big = rasterize(vertices, torch.tensor([[3, 4, 5]]), (512, 300))
    assert bool(big.mask.all())


def test_barycentric_gradients_match_finite_differences() -> None:
    vertices, faces = random_scene(5, batch=1, num_faces=12, dtype=torch.float64)
    fragments = rasterize(vertices, faces, 12)
    from augane.flame.camera import normalised_to_pixels

    pixel_xy = normalised_to_pixels(vertices[..., :2], 12, 12).reshape(-1, 2).detach().requires_grad_(True)

    def bary_of(xy):
        corners = (xy.detach() - 0.5)[faces.T]  # (3, F, 2), pixel-index coordinates (centres at integers)
        (xa, ya), (xb, yb), (xc, yc) = (corners[k].unbind(-1) for k in range(3))
        e1x, e1y, e2x, e2y = xb - xa, yb - ya, xc - xa, yc - ya
        inverse_area = 1.0 / (e1x * e2y - e1y * e2x)
        coefficients = _barycentric_coefficients(xa, ya, e1x, e1y, e2x, e2y, inverse_area)
        return _Barycentrics.apply(
            xy, coefficients, fragments.packed_faces, fragments.packed_corners, fragments.pixels, (1, 12, 12), False
        )

    torch.testing.assert_close(bary_of(pixel_xy).T, fragments.packed_bary)
    assert torch.autograd.gradcheck(bary_of, (pixel_xy,), eps=1e-6, atol=1e-6)


def test_interpolated_image_gradients_match_finite_differences() -> None:
    from augane.render.interpolation import interpolate

    vertices, faces = random_scene(7, batch=1, num_faces=10, dtype=torch.float64)
    colours = torch.rand(1, vertices.shape[1], 3, dtype=torch.float64)
    reference = rasterize(vertices, faces, 10).face_index

    def render(v, c):
        fragments = rasterize(v, faces, 10)
        assert torch.equal(fragments.face_index, reference)  # no visibility change within the step
        return interpolate(fragments, c)

    v = vertices.clone().requires_grad_(True)
    c = colours.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(render, (v, c), eps=1e-7, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "vertices, faces, message",
    [
        (torch.zeros(4, 3), torch.tensor([[0, 1, 2]]), "must be \\(B, V, 3\\)"),
        (torch.zeros(1, 4, 2), torch.tensor([[0, 1, 2]]), "must be \\(B, V, 3\\)"),
        (torch.zeros(1, 4, 3), torch.tensor([0, 1, 2]), "faces must be \\(F, 3\\)"),
        (torch.zeros(1, 4, 3), torch.tensor([[0, 1, 4]]), "faces index vertices 0..4 but the mesh has 4"),
        (torch.zeros(1, 4, 3), torch.tensor([[0, -1, 2]]), "faces index vertices -1..2"),
        (torch.zeros(1, 4, 3), torch.tensor([[0.0, 1.0, 2.0]]), "integer"),
        (torch.zeros(1, 4, 3, dtype=torch.int64), torch.tensor([[0, 1, 2]]), "floating-point"),
        (torch.full((1, 4, 3), math.nan), torch.tensor([[0, 1, 2]]), "NaN"),
    ],
)
def test_bad_input_raises_clear_errors(vertices, faces, message) -> None:
    with pytest.raises(ValueError, match=message):
        rasterize(vertices, faces, 8)


@pytest.mark.parametrize("size", [0, (4, 0), (1, 2, 3), 1 << 16])
def test_bad_image_sizes_raise(size) -> None:
    with pytest.raises(ValueError, match="image"):
        rasterize(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 2]]), size)


def test_empty_mesh_and_empty_batch() -> None:
    fragments = rasterize(torch.zeros(2, 3, 3), torch.zeros(0, 3, dtype=torch.int64), 8)
    assert fragments.face_index.shape == (2, 8, 8) and not fragments.mask.any()
    fragments = rasterize(torch.zeros(0, 3, 3), torch.tensor([[0, 1, 2]]), 8)
    assert fragments.bary.shape == (0, 8, 8, 3)


@pytest.mark.parametrize("first_pass_rows, images_per_group", [(1, 1), (3, 2), (8, 3), (64, 1)])
def test_row_passes_and_image_groups_do_not_change_the_fragments(monkeypatch, first_pass_rows, images_per_group) -> None:
    import augane.render.rasterizer as rasterizer

    vertices, faces = random_scene(4, batch=3, num_faces=50)
    reference = rasterize(vertices, faces, (21, 27))
    monkeypatch.setattr(rasterizer, "_first_pass_rows", lambda device, fused: first_pass_rows)
    monkeypatch.setattr(rasterizer, "_images_per_group", lambda device, num_faces: images_per_group)
    other = rasterize(vertices, faces, (21, 27))
    assert torch.equal(other.face_index, reference.face_index)
    torch.testing.assert_close(other.bary, reference.bary, atol=0, rtol=0)


def test_orientation_of_slivers_is_exact_in_float32() -> None:
    """Near-collinear faces whose float32 area has the wrong sign are decided exactly (culling, degeneracy)."""
    from augane.render.rasterizer import _visibility_keys

    generator = torch.Generator().manual_seed(11)
    count = 4000
    start = 10.0 + 150.0 * torch.rand(count, 2, generator=generator, dtype=torch.float64)
    direction = torch.randn(count, 2, generator=generator, dtype=torch.float64)
    offsets = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 20.0
    normal = torch.stack([-direction[:, 1], direction[:, 0]], 1)
    wobble = (torch.rand(count, generator=generator, dtype=torch.float64) - 0.5) * 1e-4
    corners = torch.stack(
        [start, start + offsets[:, :1] * direction, start + offsets[:, 1:] * direction + wobble[:, None] * normal], 1
    ).float()  # (count, 3, 2): exactly representable in float32, so the float64 run sees the same triangles
    xy = corners.reshape(-1, 2)
    corner_ids = torch.arange(3 * count).view(count, 3).T.contiguous()
    z = torch.zeros(3 * count)
    # Exact orientation (float64 products of float32 differences) against the plain float32 estimate.
    c = corners.double() - 0.5
    exact = (c[:, 1, 0] - c[:, 0, 0]) * (c[:, 2, 1] - c[:, 0, 1]) - (c[:, 1, 1] - c[:, 0, 1]) * (c[:, 2, 0] - c[:, 0, 0])
    f = corners - 0.5
    rough = (f[:, 1, 0] - f[:, 0, 0]) * (f[:, 2, 1] - f[:, 0, 1]) - (f[:, 1, 1] - f[:, 0, 1]) * (f[:, 2, 0] - f[:, 0, 0])
    assert int((torch.sign(rough).double() != torch.sign(exact)).sum()) > 10  # the test exercises the fallback
    for cull in (False, True):
        single = _visibility_keys(xy, z, corner_ids, 1, count, 200, 200, cull, 1 << 18, False)
        double = _visibility_keys(xy.double(), z.double(), corner_ids, 1, count, 200, 200, cull, 1 << 18, False)
        expected = (exact < 0 if cull else exact != 0).nonzero().squeeze(1)
        assert torch.equal(single.face_ids, expected)
        assert torch.equal(double.face_ids, expected)


@pytest.mark.parametrize("batch, height, width", [(2, 7, 9), (32, 256, 256), (70, 256, 240)])
def test_pixel_centres_are_exact(batch: int, height: int, width: int) -> None:
    from augane.render.rasterizer import _pixel_centres

    total = batch * height * width  # float32 up to 2**21 pixels (the first two cases), else float64
    pixels = torch.cat([torch.arange(0, min(total, 5000)), torch.arange(max(0, total - 5000), total)]).unique()
    centre_x, centre_y = _pixel_centres(pixels, batch, height, width, torch.float32)
    assert torch.equal(centre_x, (pixels % width).float())
    assert torch.equal(centre_y, ((pixels // width) % height).float())
