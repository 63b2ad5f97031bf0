"""The weighted total loss: named terms times the same-named weights of ``losses.weights``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from augane.errors import ConfigError


def weighted_total(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """``sum_name weights[name] * terms[name]`` (paper eq. 4 with its weights).

    Strict on names, so that no term is silently left out: every computed
    term needs a weight, and every non-zero weight needs its term. Terms
    with weight 0 are left out of the sum (they can still be logged).

    Raises:
        ConfigError: naming the ``losses.weights`` key that is missing or unused.
    """
    unweighted = sorted(set(terms) - set(weights))
    if unweighted:
        raise ConfigError(
            f"loss terms {unweighted} have no weight: add them under losses.weights (known: {sorted(weights)})"
        )
    uncomputed = sorted(name for name, weight in weights.items() if weight and name not in terms)
    if uncomputed:
        raise ConfigError(
            f"losses.weights gives non-zero weights to {uncomputed}, but no such terms were computed "
            f"(computed: {sorted(terms)}); set those weights to 0 to train without them"
        )
    active = [weights[name] * value for name, value in terms.items() if weights[name]]
    if not active:
        raise ConfigError(
            f"every weight in losses.weights is 0 for the computed terms {sorted(terms)}; nothing to train"
        )
    return sum(active[1:], active[0])
