"""GANE: the graph attention network encoder that regresses FLAME expression, pose and camera."""

from augane.model.gane import CAMERA_DIM, EXPRESSION_DIM, POSE_DIM, GANE

__all__ = ["CAMERA_DIM", "EXPRESSION_DIM", "GANE", "POSE_DIM"]
