"""The dashboard's server-drawn SVG charts: scaled into the plot, gaps kept, readable as a table, escaped."""

from __future__ import annotations

import re

from pilothouse.ui.charts import HEIGHT, Marker, Series, bar_chart, line_chart


def _path_points(svg: str) -> list[tuple[float, float]]:
    d = re.search(r'<path d="([^"]*)"', svg)
    assert d
    return [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+),([\d.]+)", d.group(1))]


def test_a_line_goes_up_when_the_value_does_and_stays_in_the_plot() -> None:
    chart = line_chart("cost", [Series("cost", [(0, 1.0), (60, 3.0), (120, 2.0)])], unit="$")
    points = _path_points(chart.svg)
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    ys = [y for _, y in points]
    assert ys[1] < ys[2] < ys[0]  # SVG y grows downwards
    assert all(0 <= y <= HEIGHT for y in ys)
    assert chart.rows[1][1] == "$3.00"


def test_a_missing_value_breaks_the_line() -> None:
    chart = line_chart("p95", [Series("p95", [(0, 10.0), (60, None), (120, 12.0)])], unit=" ms")
    d = re.search(r'<path d="([^"]*)"', chart.svg)
    assert d and d.group(1).count("M") == 2
    assert chart.rows[1][1] == ""


def test_no_points_is_an_empty_chart() -> None:
    assert line_chart("x", [Series("x", [])]).empty
    assert bar_chart("x", []).empty


def test_references_markers_and_labels_are_escaped() -> None:
    chart = line_chart(
        "rate <script>",
        [Series("a&b", [(0, 0.1), (3600, 0.2)]), Series("c", [(0, 0.3)])],
        unit="%",
        references=[("baseline", 0.15)],
        markers=[Marker(1800, "change <point>")],
    )
    assert "<script>" not in chart.svg and "rate &lt;script&gt;" in chart.svg
    assert "a&amp;b" in chart.svg and "change &lt;point&gt;" in chart.svg
    assert 'class="reference"' in chart.svg and 'class="marker"' in chart.svg
    assert 'role="img"' in chart.svg
    assert chart.headers == ("time", "a&b", "c")
    assert chart.rows[0][1:] == ("10.0%", "30.0%")


def test_bars_are_as_tall_as_their_values() -> None:
    chart = bar_chart("latency", [("<100ms", 10.0), ("<1s", 5.0), (">1s", 0.0)])
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', chart.svg)]
    assert heights[0] == 2 * heights[1] and heights[2] == 0
    assert chart.rows == [("<100ms", "10"), ("<1s", "5"), (">1s", "0")]
