"""Maps each descriptor's raw cosine similarity to a calibrated score in [0, 1].

score = clip((cosine - floor) / (1 - floor), 0, 1), where `floor` is about the best cosine an
unrelated image reaches (measured with bench/ndd.py over thousands of distractors). So 0 means
"no evidence of a duplicate" and one `t_sim` means the same for every query and descriptor.
"""

from __future__ import annotations

# Raw cosine at which unrelated images top out, per descriptor.
FLOORS: dict[str, float] = {
    "offline": 0.55,
    "deep": 0.60,
}


def calibrate(descriptor: str, cosine: float) -> float:
    floor = FLOORS.get(descriptor, 0.0)
    return float(min(1.0, max(0.0, (cosine - floor) / (1.0 - floor))))
