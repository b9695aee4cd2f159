"""Inline SVG charts: well-formed, bars and whiskers where the numbers put them, text escaped."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from common.svg_charts import CHAR_WIDTH, BarSeries, LineSeries, interval_bars, line_chart, nice_ticks

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_bar_lengths_and_whiskers_follow_the_values():
    svg = _parse(interval_bars(["a <b>", "c"], [BarSeries("m&n", [0.25, 1.0], [(0.1, 0.4), (0.9, 1.0)]),
                                                BarSeries("k", [0.5, None], [(0.4, 0.6), None])], "chart"))
    bars = svg.findall(".//svg:rect[@class='bar']", NS)
    # row by row: (a, m&n), (a, k), (c, m&n); (c, k) has no value and is drawn as "n/a", not as a bar
    assert [float(b.get("data-value")) for b in bars] == [0.25, 0.5, 1.0]
    widths = [float(b.get("width")) for b in bars]
    assert math.isclose(widths[0] / widths[2], 0.25, rel_tol=0.01)
    assert math.isclose(widths[1] / widths[2], 0.5, rel_tol=0.01)
    whiskers = svg.findall(".//svg:line[@class='interval']", NS)
    span = [float(w.get("x2")) - float(w.get("x1")) for w in whiskers]
    assert math.isclose(span[0] / widths[2], 0.3, rel_tol=0.02)  # the interval [0.1, 0.4] on a unit axis
    texts = "".join(svg.itertext())
    assert "a <b>" in texts and "m&n" in texts and "n/a" in texts  # escaped in the file, intact when read


def test_a_long_task_name_is_shortened_in_the_middle_to_fit_its_column_and_kept_whole_in_its_tooltip():
    name = "LIVING_ROOM_SCENE4_pick_up_the_salad_dressing_and_put_it_in_the_tray"
    svg = _parse(interval_bars([name, "reach-v3"], [BarSeries("m", [0.7, 1.0], [(0.4, 0.9), (0.9, 1.0)])], "c"))
    labels = [t for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.get("text-anchor") == "end"]
    shown = [label.find("svg:title", NS).tail for label in labels]
    assert shown[1] == "reach-v3" and shown[0].startswith("LIVING_ROOM_SC") and shown[0].endswith("put_it_in_the_tray")
    assert "\u2026" in shown[0] and len(shown[0]) * CHAR_WIDTH <= float(labels[0].get("x"))  # fits left of the bars
    assert labels[0].find("svg:title", NS).text == name


def test_negative_differences_point_left_of_zero():
    svg = _parse(interval_bars(["x", "y"], [BarSeries("d", [-0.2, 0.3], [(-0.3, -0.1), (0.1, 0.5)])], "diff",
                               domain=(-0.5, 0.5)))
    left, right = svg.findall(".//svg:rect[@class='bar']", NS)
    assert float(left.get("x")) + float(left.get("width")) == float(right.get("x"))  # both start at zero


def test_line_chart_draws_every_series_and_a_log_axis_drops_non_positive_points():
    svg = _parse(line_chart([LineSeries("a", [0, 1, 2], [1.0, 0.1, 0.01]), LineSeries("b", [0, 1], [0.0, 0.5])],
                            "loss", log_y=True))
    lines = svg.findall(".//svg:polyline[@class='line']", NS)
    assert [len(line.get("points").split()) for line in lines] == [3, 1]
    ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    assert abs((ys[1] - ys[0]) - (ys[2] - ys[1])) < 0.2  # equal ratios are equal steps on a log axis
    empty = _parse(line_chart([], "nothing"))
    assert "no data" in "".join(empty.itertext())


def test_ticks_are_round_numbers_covering_the_range():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-0.5, 0.5, 4) == [-0.5, 0.0, 0.5]
    assert nice_ticks(13, 987) == [200, 400, 600, 800]
