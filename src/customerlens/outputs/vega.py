"""Vega, Vega-Lite and vega-embed as one offline script, bundled by vl-convert (no network, no CDN).

The report inlines it; the dashboard serves it as ``/static/vega.js``.
"""

from __future__ import annotations

import importlib.metadata

from customerlens.core.files import cached_text


def bundle() -> str:
    """The script (about 900 KB), made once per vl-convert version (about 3 s), then read from the cache folder."""
    import vl_convert as vlc

    version = importlib.metadata.version("vl-convert-python")
    return cached_text(f"vega-bundle-{version}.js", vlc.javascript_bundle)
