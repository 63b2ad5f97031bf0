"""Preprocessing stage: manifests, face crops and MediaPipe landmarks into Zarr shards."""
