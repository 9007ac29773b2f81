"""``customerlens serve``: refuse unsafe settings, then run uvicorn with one worker."""

from __future__ import annotations

from customerlens.api.settings import TOKEN_ENV, Settings, is_loopback
from customerlens.errors import CustomerLensError


def check_bind(settings: Settings, host: str, port: int) -> None:
    """Refuse a non-loopback address without a token, and impossible ports."""
    if not 0 < port < 65536:
        raise CustomerLensError(f"--port must be between 1 and 65535, got {port}")
    if not is_loopback(host) and not settings.token:
        raise CustomerLensError(
            f"refusing to listen on {host} (not loopback) without an API token: pass --token or set "
            f"{TOKEN_ENV}, or keep the default --host 127.0.0.1"
        )


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the dashboard and API with uvicorn until interrupted."""
    import uvicorn

    from customerlens.api.app import create_app

    settings.check()
    check_bind(settings, host, port)
    # the access log is off: it would write ?token= query strings to the terminal
    uvicorn.run(create_app(settings), host=host, port=port, workers=1, log_level="warning", access_log=False)
