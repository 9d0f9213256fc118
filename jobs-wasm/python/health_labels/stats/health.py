"""A value's health by the thresholds main() configured: the best level whose threshold the
value reaches."""

from typing import Dict


def health_of(value: float, thresholds: Dict[str, float]) -> str:
    reached = [(t, level) for level, t in thresholds.items() if value >= t]
    if not reached:
        return "poor"
    return max(reached)[1]
