"""Differentiable rendering in plain PyTorch: rasteriser, attribute interpolation, SH shading, compositing."""
