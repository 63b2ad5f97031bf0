"""Reading and writing data: atomic outputs, Zarr shard stores, datasets and manifests."""
