"""Facial action units: the one list of AU numbers, names and AU sets used everywhere.

AU numbers follow FACS (Ekman & Friesen). AU sets are tuples of ints in the
order the corresponding detector or dataset emits them, so an index into a
detector's output vector maps to ``AU_SET[index]``.
"""

from __future__ import annotations

FACS_NAMES: dict[int, str] = {
    1: "Inner Brow Raiser",
    2: "Outer Brow Raiser",
    4: "Brow Lowerer",
    5: "Upper Lid Raiser",
    6: "Cheek Raiser",
    7: "Lid Tightener",
    9: "Nose Wrinkler",
    10: "Upper Lip Raiser",
    11: "Nasolabial Deepener",
    12: "Lip Corner Puller",
    13: "Sharp Lip Puller",
    14: "Dimpler",
    15: "Lip Corner Depressor",
    16: "Lower Lip Depressor",
    17: "Chin Raiser",
    18: "Lip Pucker",
    19: "Tongue Show",
    20: "Lip Stretcher",
    22: "Lip Funneler",
    23: "Lip Tightener",
    24: "Lip Pressor",
    25: "Lips Part",
    26: "Jaw Drop",
    27: "Mouth Stretch",
    32: "Lip Bite",
    38: "Nostril Dilator",
    39: "Nostril Compressor",
    43: "Eyes Closed",
    45: "Blink",
}

#: The 12 AUs the paper evaluates (Tables 2-3).
PAPER_EVAL_AUS: tuple[int, ...] = (1, 2, 4, 5, 7, 9, 10, 12, 15, 20, 23, 26)

#: The 12 AUs annotated in DISFA (intensity 0-5 per frame).
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)

#: ME-GraphAU trained on BP4D: output order of its 12 AUs.
MEGRAPHAU_BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)

#: ME-GraphAU trained on DISFA: output order of its 8 AUs.
MEGRAPHAU_DISFA_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)

#: OpenGraphAU (hybrid data): output order of its 27 main AUs.
OPENGRAPHAU_MAIN_AUS: tuple[int, ...] = (
    1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27, 32, 38, 39,
)

#: OpenGraphAU's 14 left/right sub-AU outputs, as the reference names them
#: (``L1`` = left AU1, ...). They follow the 27 main outputs.
OPENGRAPHAU_SUB_AUS: tuple[str, ...] = (
    "L1", "R1", "L2", "R2", "L4", "R4", "L6", "R6", "L10", "R10", "L12", "R12", "L14", "R14",
)


def au_label(au: int | str) -> str:
    """Column-style label of an AU: ``AU4`` for 4, ``AU_L1`` for the sub-AU ``L1``."""
    if isinstance(au, str):
        return f"AU_{au}"
    return f"AU{au}"


def au_name(au: int) -> str:
    """FACS name of an AU number, e.g. ``4 -> 'Brow Lowerer'``."""
    try:
        return FACS_NAMES[au]
    except KeyError as err:
        raise KeyError(f"AU{au} is not a FACS action unit known to AUGANE (known: {sorted(FACS_NAMES)})") from err


def indices_in(aus: tuple[int, ...], available: tuple[int, ...]) -> dict[int, int]:
    """Map each AU of ``aus`` present in ``available`` to its index in ``available``.

    AUs missing from ``available`` are left out; callers decide what a missing
    AU means (the AU-weighted landmark loss drops its term, evaluation reports it).
    """
    position = {au: i for i, au in enumerate(available)}
    return {au: position[au] for au in aus if au in position}
