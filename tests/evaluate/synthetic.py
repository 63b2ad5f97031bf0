"""Tiny predictions tables built by the evaluation tests themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd

HIGH, LOW = 0.9, 0.1


def prediction_rows(subject: str, method: str, detections: dict[int, list[int]], start: int = 0) -> list[dict]:
    """Rows of a predictions table from 0/1 detections per AU (probability 0.9 for 1, 0.1 for 0)."""
    frames = len(next(iter(detections.values())))
    return [
        {
            "subject": subject,
            "frame": start + f,
            "method": method,
            **{f"prob_AU{au}": (HIGH if values[f] else LOW) for au, values in detections.items()},
        }
        for f in range(frames)
    ]


def random_world(subjects: int = 4, frames: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random predictions table (input + three methods, 12 paper AUs and DISFA's AUs) and matching labels."""
    rng = np.random.default_rng(seed)
    aus = (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 25, 26)
    rows, labels = [], []
    for s in range(subjects):
        subject = f"SN{s + 1:03d}"
        for f in range(frames):
            p = rng.random(len(aus)) * (0.6 + 0.1 * s)
            rows.append(
                {
                    "subject": subject,
                    "frame": f,
                    "method": "input",
                    **{f"prob_AU{a}": v for a, v in zip(aus, np.clip(p, 0, 1))},
                }
            )
            for method, noise in (("augane", 0.1), ("deca", 0.3), ("emoca", 0.2)):
                q = np.clip(p + rng.normal(0, noise, len(aus)), 0, 1)
                rows.append(
                    {"subject": subject, "frame": f, "method": method, **{f"prob_AU{a}": v for a, v in zip(aus, q)}}
                )
            labels.append({"subject": subject, "frame": f, **{f"AU{a}": int(min(5, v * 5)) for a, v in zip(aus, p)}})
    return pd.DataFrame(rows), pd.DataFrame(labels)
