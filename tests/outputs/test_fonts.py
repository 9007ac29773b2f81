"""vl-convert's own Liberation Sans alone where it draws every character of the charts (customerlens.outputs.fonts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from customerlens.outputs import fonts

# the charts of a fresh process: a bar chart whose labels are ``names``; SVG text and PNG bytes out, as JSON
_DRAW = """
import json, sys, time
import pandas as pd
from customerlens.core.process import claim
from customerlens.outputs import charts, fonts
if {own}:
    claim()
names = {names!r}
chart = charts.Chart(pd.DataFrame({{"name": names, "spend": range(1, len(names) + 1)}})).mark_bar().encode(
    y="name:N", x="spend:Q").properties(title="Top products")
spec = charts.spec(chart)
settled = fonts.settle(fonts.covers([spec]))
paths = charts.write_chart(spec, {folder!r} + "/c", png=False)
def width(font):  # a chart's width, set by one y-axis label measured in ``font``
    import re, vl_convert as vlc
    label = {{"data": {{"values": [{{"t": "Holder 2011-11-11 Größe"}}]}}, "mark": "point", "encoding": {{"y": {{
        "field": "t", "type": "nominal", "axis": {{"labelFont": font, "labelLimit": 0, "title": None}}}}}}}}
    return float(re.search(r'width="([0-9.]+)"', vlc.vegalite_to_svg(label)).group(1))
out = {{"builtin": settled, "env": "FONTCONFIG_FILE" in __import__("os").environ, "svg": paths["svg"].read_text(),
        "widths": [width("sans-serif"), width("DejaVu Sans"), width("Liberation Sans")]}}
if {worker}:
    from customerlens.core.worker import Worker
    from customerlens.outputs.rasters import Rasters, rasterize
    rasters = Rasters()
    rasters.add(paths["svg"], paths["png"])
    with Worker() as worker:
        assert rasters.hand_over(worker)
        while rasters._todo:  # the worker takes it (this process would draw it itself at finish)
            time.sleep(0.01)
        rasters.finish()
        assert rasters.worker_stats["task"] == "charts: 1 PNG", rasters.worker_stats
        rasters.close()
    here = rasterize(paths["svg"], {folder!r} + "/here.png")
    out["same_png"] = here.read_bytes() == paths["png"].read_bytes()
print(json.dumps(out))
"""

LATIN = ["WHITE HANGING HEART T-LIGHT HOLDER", "Café crème – 250 g", "JUMBO BAG RED RETROSPOT…", "Größe 11 €"]


def _draw(tmp_path, name, names, own=True, worker=False) -> dict:
    folder = tmp_path / name
    folder.mkdir()
    code = _DRAW.format(own=own, names=names, folder=str(folder), worker=worker)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_which_text_liberation_sans_draws():
    assert fonts.drawable("WHITE HANGING HEART T-LIGHT HOLDER") and fonts.drawable("Crème brûlée – 12 € ‰ “ok”…")
    assert fonts.drawable("Łódź, Škoda, Ærø")  # Latin-1 and Latin Extended-A
    for other in ("日本茶", "Пельмени", "Ωmega", "حليب", "🎁 gift", "\ufffd"):
        assert not fonts.drawable(other), other
    spec = {"title": "Top products", "data": {"values": [{"name": "MUG"}, {"name": "BAG"}]}}
    assert fonts.covers([spec, {"x": 1.5, "y": None}])
    assert not fonts.covers([spec, {"data": {"values": [{"name": "抹茶"}]}}])


def test_own_processes_draw_latin_charts_with_the_builtin_font_alone(tmp_path):
    """vl-convert sees none of the machine's fonts (a family only the machine has is not measured as itself),
    the process's environment is left as it was, and a run's worker, told the fonts, draws the same PNG.
    A user's process keeps the machine's fonts.
    """
    builtin = _draw(tmp_path, "builtin", LATIN, worker=True)
    machine = _draw(tmp_path, "machine", LATIN, own=False)
    linux = sys.platform.startswith("linux")
    assert builtin["builtin"] is linux and not builtin["env"]
    assert machine["builtin"] is False
    assert builtin["same_png"]
    assert builtin["svg"].count("<text") == machine["svg"].count("<text")  # the same chart, every label there
    if linux:
        assert builtin["widths"][0] == builtin["widths"][2]  # sans-serif is its own Liberation Sans
        if any(Path(d).is_dir() for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")):
            # the machine's DejaVu Sans measured as itself in a user's process, not seen in customerlens's own
            assert builtin["widths"][1] != machine["widths"][1], (builtin["widths"], machine["widths"])


def test_charts_with_other_characters_keep_the_machines_fonts(tmp_path):
    drawn = _draw(tmp_path, "cjk", [*LATIN, "抹茶ラテ"])
    assert drawn["builtin"] is False


def test_settle_for_reads_the_charts_text_only_before_the_process_has_settled(monkeypatch):
    def unread():
        raise AssertionError("the specs were read")
        yield  # pragma: no cover

    monkeypatch.setattr(fonts, "_settled", False)
    assert fonts.settle_for(unread()) is False  # settled already: the specs are not read again
    monkeypatch.setattr(fonts, "_settled", None)
    read = []
    monkeypatch.setattr(fonts, "covers", lambda specs: read.append(list(specs)) or False)
    assert fonts.settle_for([{"title": "抹茶"}]) is False  # not settled: their text decides (the machine's fonts)
    assert read == [[{"title": "抹茶"}]]
