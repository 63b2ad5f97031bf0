"""Face-model geometry: FLAME-format files, linear blend skinning, landmarks, the camera, mesh export."""
