"""Process-wide settings that main() builds from service_config.json before any job runs."""

from typing import Dict


class Settings:
    thresholds: Dict[str, float] = {}
    prefix: str = ""

    @classmethod
    def update(cls, thresholds: Dict[str, float], prefix: str) -> None:
        cls.thresholds = dict(thresholds)
        cls.prefix = prefix
