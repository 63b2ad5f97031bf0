"""Feature-caching stage: AU detector and DECA outputs per shard."""
