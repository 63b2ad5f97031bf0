"""Demo face model, step 7: a quick look at the model (painter's-algorithm drawing with matplotlib).

This is a preview drawing, not the project's renderer: triangles are filled
with flat colours (mean vertex albedo times a Lambertian term), far to near,
back faces skipped, projected with the project's camera
(:func:`augane.flame.camera.project`).
"""

from __future__ import annotations

import numpy as np
import torch

from augane.flame.camera import normalised_to_pixels, project

_LIGHT = np.array([0.25, 0.45, 1.0]) / np.linalg.norm([0.25, 0.45, 1.0])


def draw_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray,
    cam: tuple[float, float, float],
    size: int = 256,
    background: tuple[float, float, float] = (0.55, 0.6, 0.65),
) -> np.ndarray:
    """Draw a shaded mesh.

    Args:
        vertices: (V, 3) model-space vertices.
        faces: (F, 3) triangles, counter-clockwise seen from outside.
        colors: (V, 3) albedo in [0, 1].
        cam: DECA camera (s, tx, ty).
        size: image side in pixels.
        background: RGB in [0, 1].
    Returns:
        (size, size, 3) uint8 RGB image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    projected = project(torch.tensor(vertices[None]), torch.tensor([cam], dtype=torch.float64))[0].numpy()
    pixels = normalised_to_pixels(projected[:, :2], size)
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-18)
    front = normals[:, 2] > 0
    shade = 0.35 + 0.65 * np.clip(normals @ _LIGHT, 0.0, 1.0)
    face_colors = np.clip(colors[faces].mean(axis=1) * shade[:, None], 0.0, 1.0)
    depth = projected[faces, 2].mean(axis=1)
    order = np.flatnonzero(front)[np.argsort(-depth[front], kind="stable")]

    figure = Figure(figsize=(size / 100, size / 100), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, size)
    axes.set_ylim(size, 0)
    axes.axis("off")
    figure.patch.set_facecolor(background)
    polygons = PolyCollection(pixels[faces[order]], facecolors=face_colors[order], edgecolors=face_colors[order],
                              linewidths=0.3, antialiased=False)
    axes.add_collection(polygons)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3]
    return image.copy()


#: Panels of the preview: title and AU intensities (0-5).
PREVIEW_PANELS: tuple[tuple[str, dict[int, float]], ...] = (
    ("neutral", {}),
    ("AU1+2", {1: 4.0, 2: 4.0}),
    ("AU4", {4: 4.0}),
    ("AU5", {5: 4.0}),
    ("AU6+7", {6: 4.0, 7: 3.0}),
    ("AU9+10", {9: 4.0, 10: 3.0}),
    ("AU12", {12: 4.0}),
    ("AU15+17", {15: 4.0, 17: 3.0}),
    ("AU18", {18: 4.0}),
    ("AU20+23", {20: 4.0, 23: 3.0}),
    ("AU25", {25: 4.0}),
    ("AU25+26", {25: 3.0, 26: 4.0}),
)


def write_preview(path, files: dict, size: int = 256, columns: int = 6) -> None:
    """Draw the model from its written files: every panel of :data:`PREVIEW_PANELS` with the 105 landmarks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.ndimage import map_coordinates

    from augane.demo.face_model import au_parameters
    from augane.flame.layer import FlameLayer
    from augane.flame.texture import load_albedo_space, load_head_template
    from augane.io.atomic import atomic_path

    layer = FlameLayer.from_files(files["face_model"], files["landmark_embedding"], files["mediapipe_embedding"],
                                  dtype=torch.float64)
    template = load_head_template(files["head_template"], layer.num_vertices, int(layer.faces.shape[0]))
    albedo = load_albedo_space(files["albedo_model"]).mean
    rows_px = (1.0 - template.uvs[:, 1]) * albedo.shape[0] - 0.5
    cols_px = template.uvs[:, 0] * albedo.shape[1] - 0.5
    colors = np.stack([map_coordinates(albedo[..., c], [rows_px, cols_px], order=1) for c in range(3)], axis=1)
    vertex_colors = np.zeros((layer.num_vertices, 3))
    vertex_colors[template.faces.ravel()] = colors[template.uv_faces.ravel()]

    cam = (9.0, 0.0, 0.0)
    rows = (len(PREVIEW_PANELS) + columns - 1) // columns
    figure = Figure(figsize=(columns * size / 100, rows * (size + 18) / 100), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, intensities) in enumerate(PREVIEW_PANELS):
        expression, jaw = au_parameters(intensities, n_exp=layer.n_exp)
        pose = torch.zeros(1, 6, dtype=torch.float64)
        pose[0, 3:] = torch.tensor(jaw)
        out = layer(torch.zeros(1, layer.n_shape, dtype=torch.float64), torch.tensor(expression[None]), pose)
        vertices = out.vertices[0].numpy()
        image = draw_mesh(vertices, layer.faces.numpy(), vertex_colors, cam, size)
        landmarks = project(out.landmarks105, torch.tensor([cam], dtype=torch.float64))[0, :, :2].numpy()
        pixels = normalised_to_pixels(landmarks, size)
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image, extent=(0, size, size, 0))
        axes.scatter(pixels[:, 0], pixels[:, 1], s=2.0, c="#00e5ff", linewidths=0)
        axes.set_title(title, fontsize=9)
        axes.axis("off")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.95, wspace=0.02, hspace=0.12)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
