"""AUGANE: action-unit-guided 3D face reconstruction with a graph attention network encoder."""

__version__ = "0.1.0"
