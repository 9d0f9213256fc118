"""``deep_update``: tglib's in-place deep merge of one dict into another (how tglib folds
``overrides`` into ``config.json``, and how services merge per-network answers)."""

import copy
from collections.abc import Mapping
from typing import Dict

__all__ = ["deep_update"]


def deep_update(dst: Dict, src: Dict, join_lists: bool = False) -> None:
    """Merges ``src`` into ``dst`` in place, as tglib's: a dict in ``src`` over a mapping
    in ``dst`` merges key by key; with ``join_lists``, a list over a list is appended to it;
    anything else replaces what ``dst`` held, as a deep copy (``dst`` shares nothing with
    ``src`` afterwards)."""
    for key, value in src.items():
        if key not in dst:
            dst[key] = copy.deepcopy(value)
            continue
        held = dst[key]
        if isinstance(value, dict) and isinstance(held, Mapping):
            deep_update(held, value, join_lists)
        elif join_lists and isinstance(value, list) and isinstance(held, list):
            dst[key] = held + value
        else:
            dst[key] = copy.deepcopy(value)
