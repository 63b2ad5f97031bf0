"""Demo face model, step 7: renders of the model, and the preview sheet.

Renders use the project's renderer (:class:`augane.render.MeshRenderer`:
UV-textured albedo, DECA's SH shading with :func:`augane.render.default_light`)
and the project's camera, on the model as loaded back from its files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from augane.flame.camera import normalised_to_pixels, project
from augane.flame.layer import FlameLayer, FlameOutput
from augane.flame.texture import AlbedoLayer, load_albedo_space, load_head_template
from augane.render import MeshRenderer, RenderSettings, UVLayout, default_light

#: Camera framing the demo face in a square image (DECA's (s, tx, ty)).
PREVIEW_CAMERA = (9.0, 0.0, 0.0)
BACKGROUND = (0.55, 0.6, 0.65)

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


class DemoFaceRenderer:
    """Decode and render the demo face model from its files.

    Args:
        files: paths by role (``face_model``, ``landmark_embedding``,
            ``mediapipe_embedding``, ``head_template``, ``albedo_model``).
        image_size: rendered side in pixels.
    """

    def __init__(self, files: Mapping[str, str | Path], image_size: int = 256) -> None:
        self.layer = FlameLayer.from_files(files["face_model"], files["landmark_embedding"],
                                           files["mediapipe_embedding"])
        template = load_head_template(files["head_template"], self.layer.num_vertices, int(self.layer.faces.shape[0]))
        self.albedo = AlbedoLayer(load_albedo_space(files["albedo_model"]), n_tex=50)
        layout = UVLayout.from_arrays(template.uvs, template.uv_faces, len(template.faces))
        settings = RenderSettings(image_size=image_size, background_color=BACKGROUND)
        self.renderer = MeshRenderer(torch.as_tensor(template.faces), settings, uv_layout=layout)
        self.image_size = image_size

    def decode(self, intensities: Sequence[Mapping[int, float]], pose: torch.Tensor | None = None,
               shape: torch.Tensor | None = None) -> FlameOutput:
        """Model output for a batch of AU intensity dicts (optionally with global pose (B, 3) and shape)."""
        from augane.demo.face_model import au_parameters

        pairs = [au_parameters(values, n_exp=self.layer.n_exp) for values in intensities]
        expression = torch.tensor(np.stack([e for e, _ in pairs]), dtype=torch.float32)
        full_pose = torch.zeros(len(pairs), 6)
        full_pose[:, 3:] = torch.tensor(np.stack([j for _, j in pairs]), dtype=torch.float32)
        if pose is not None:
            full_pose[:, :3] = pose
        if shape is None:
            shape = torch.zeros(len(pairs), self.layer.n_shape)
        return self.layer(shape, expression, full_pose)

    @torch.no_grad()
    def render(self, output: FlameOutput, cam: tuple[float, float, float] = PREVIEW_CAMERA) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB renders of a model output (mean albedo, neutral white light)."""
        batch = output.vertices.shape[0]
        texture = self.albedo(torch.zeros(batch, self.albedo.n_tex)).clamp(0.0, 1.0)
        cams = torch.tensor([cam] * batch, dtype=torch.float32)
        image = self.renderer(output.vertices, cams, texture, default_light(batch)).image
        return (image.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)

    def landmark_pixels(self, output: FlameOutput, cam: tuple[float, float, float] = PREVIEW_CAMERA) -> np.ndarray:
        """(B, 105, 2) the 105 landmarks in pixels of :meth:`render`'s images."""
        cams = torch.tensor([cam] * output.vertices.shape[0], dtype=output.vertices.dtype)
        return normalised_to_pixels(project(output.landmarks105, cams)[..., :2], self.image_size).numpy()


@torch.no_grad()
def write_preview(path: str | Path, files: Mapping[str, str | Path], size: int = 256, columns: int = 6) -> None:
    """The preview sheet: every panel of :data:`PREVIEW_PANELS` rendered, with the 105 landmarks (cyan)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from augane.io.atomic import atomic_path

    renderer = DemoFaceRenderer(files, image_size=size)
    output = renderer.decode([intensities for _, intensities in PREVIEW_PANELS])
    images = renderer.render(output)
    landmarks = renderer.landmark_pixels(output)
    rows = (len(PREVIEW_PANELS) + columns - 1) // columns
    figure = Figure(figsize=(columns * size / 100, rows * (size + 18) / 100), dpi=100)
    FigureCanvasAgg(figure)
    for index, (title, _) in enumerate(PREVIEW_PANELS):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(images[index], extent=(0, size, size, 0))
        axes.scatter(landmarks[index, :, 0], landmarks[index, :, 1], s=2.0, c="#00e5ff", linewidths=0)
        axes.set_title(title, fontsize=9)
        axes.axis("off")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.95, wspace=0.02, hspace=0.12)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
