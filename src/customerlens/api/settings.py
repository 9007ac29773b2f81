"""Settings of the dashboard and API: one frozen dataclass, checked before the server starts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from customerlens.errors import CustomerLensError

#: Environment variable read by ``customerlens serve`` when ``--token`` is not given.
TOKEN_ENV = "CUSTOMERLENS_API_TOKEN"
#: Hard ceiling of rows in one ``POST /api/score`` body (the Pydantic schema enforces it).
MAX_SCORE_ROWS = 10_000


@dataclass(frozen=True)
class Settings:
    """Where the store is and the limits the API enforces.

    Parameters
    ----------
    store
        ``customerlens.duckdb`` written by ``customerlens run``; opened read-only.
    token
        When set, every request but ``GET /api/health`` needs it: ``Authorization: Bearer`` from
        programs; people sign in once on ``/login`` (an ``HttpOnly``, ``SameSite=Strict`` cookie
        holding an HMAC of the token). Never in the query string.
    segmenter
        Saved segmenter for ``POST /api/score``; default ``segmenter.joblib`` beside the store.
    max_body_bytes
        Larger request bodies are refused with 413.
    max_score_rows
        Most customers (features) or lines (transactions) in one scoring request.
    max_page_size
        Largest ``page_size`` of a customer listing.
    """

    store: Path
    token: str | None = None
    segmenter: Path | None = None
    max_body_bytes: int = 1_000_000
    max_score_rows: int = MAX_SCORE_ROWS
    max_page_size: int = 200

    def check(self) -> Settings:
        """Check the settings (the store exists, the token is long enough); returns self."""
        store = Path(self.store)
        if not store.is_file():
            raise CustomerLensError(f"{store}: no customerlens store here (run `customerlens run --out DIR` "
                                    "first, then pass --store DIR/customerlens.duckdb)")
        if self.token is not None and len(self.token) < 8:
            raise CustomerLensError("the API token must have at least 8 characters")
        if self.max_body_bytes < 1 or not 1 <= self.max_score_rows <= MAX_SCORE_ROWS or self.max_page_size < 1:
            raise CustomerLensError("max_body_bytes, max_score_rows (1..10,000) and max_page_size must be positive")
        return self

    @property
    def segmenter_path(self) -> Path:
        """The fitted segmenter beside the store (or the one given)."""
        return Path(self.segmenter) if self.segmenter is not None else Path(self.store).parent / "segmenter.joblib"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False
