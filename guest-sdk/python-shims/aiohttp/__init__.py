"""The part of aiohttp a tglib service's ``routes.py`` uses, for the tgrun sandbox: its
``web`` module's route table, request, responses and HTTP exceptions, over the runner's
route handlers. There is no server, client or socket here: the runner's HTTP server takes
the request, and a fresh instance of the service's component answers it."""

from . import web

__all__ = ["web"]
