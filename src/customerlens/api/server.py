"""``customerlens serve``: refuse unsafe settings, take the port, then run uvicorn with one worker."""

from __future__ import annotations

import socket

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


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a one-line error naming the address (busy port, unknown host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CustomerLensError(f"cannot listen on {host}:{port}: unknown address ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: no wait after a restart
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = " (another program is using it: stop it or pick another --port)" if exc.errno == 98 else ""
        raise CustomerLensError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, sock: socket.socket | None = None) -> None:
    """Serve the dashboard and API with uvicorn until interrupted (on ``sock`` when given, else ``host:port``)."""
    import uvicorn

    from customerlens.api.app import create_app

    settings.check()
    check_bind(settings, host, port)
    sock = sock or bind(host, port)
    config = uvicorn.Config(create_app(settings), host=host, port=port, workers=1, log_level="warning",
                            access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
