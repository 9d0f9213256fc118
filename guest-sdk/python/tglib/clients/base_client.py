"""What every tglib client has in the sandbox: ``start``/``stop``, which belong to the
runner (it starts the clients ``config.json`` configures)."""

from typing import Any, Dict

from ..exceptions import ClientRestartError


class BaseClient:
    """tglib's client base: ``start`` raises ``ClientRestartError`` (the runner has started
    the client), ``stop`` does nothing (the runner stops it)."""

    @classmethod
    async def start(cls, config: Dict[str, Any]) -> None:
        raise ClientRestartError(f"the runner starts its clients; a job does not start {cls.__name__}")

    @classmethod
    async def stop(cls) -> None:
        """The runner stops its clients; nothing to do here."""
