"""The dashboard and REST API: ``create_app(settings)`` builds a FastAPI app over a store.

Nothing is opened or loaded at import time: the app's lifespan opens the store
read-only and loads the saved segmenter (docs/dashboard.md).
"""

from __future__ import annotations

from customerlens.api.settings import Settings, is_loopback

__all__ = ["Settings", "create_app", "is_loopback", "serve"]


def create_app(settings: Settings):
    """The FastAPI app for ``settings`` (see :mod:`customerlens.api.app`)."""
    from customerlens.api.app import create_app as _create

    return _create(settings)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, sock=None) -> None:
    """Check the settings and run the app with uvicorn (one worker) until interrupted.

    ``sock``: a socket already listening (from :func:`customerlens.api.server.bind`), else
    ``host:port`` is bound here.
    """
    from customerlens.api.server import serve as _serve

    _serve(settings, host, port, sock=sock)
