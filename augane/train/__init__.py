"""Training GANE on cached features with the AU-based losses."""
