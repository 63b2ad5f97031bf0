"""AUGANE's losses as pure functions of tensors, each returning a dict of named terms.

Term names are the keys of ``losses.weights`` in the config;
:func:`weighted_total` combines them (paper eq. 4).
"""

from augane.losses.configural import (
    CONFIGURAL_FEATURES,
    NUM_CONFIGURAL_FEATURES,
    ConfiguralFeature,
    au_relative_loss,
    configural_features,
    interocular_distance,
)
from augane.losses.feature import au_feature_loss
from augane.losses.landmark import (
    RegionTable,
    au_activation,
    au_landmark_loss,
    au_region_coverage,
    project_landmarks,
)
from augane.losses.regularisation import regularisation_terms
from augane.losses.total import weighted_total

__all__ = [
    "CONFIGURAL_FEATURES",
    "NUM_CONFIGURAL_FEATURES",
    "ConfiguralFeature",
    "RegionTable",
    "au_activation",
    "au_feature_loss",
    "au_landmark_loss",
    "au_region_coverage",
    "au_relative_loss",
    "configural_features",
    "interocular_distance",
    "project_landmarks",
    "regularisation_terms",
    "weighted_total",
]
