"""GANE: the graph attention network encoder that regresses FLAME expression, pose and camera."""
