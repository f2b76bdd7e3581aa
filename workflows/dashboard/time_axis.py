"""The timeline's time axis: ticks on "nice" steps (1, 2 or 5 times 10^n of one unit: ms, s, min or h)
whose labels never overlap, at most MAX_LABELS of them.

How many fit depends on the chart's width, which only the browser knows. So the axis is worked out
for each of a few width classes, and dashboard.css shows the one that fits the axis's box (a
container query per class, on the same widths). Labels are measured with the advance widths of a
wide font, so a narrower one only leaves more room between them."""

import math
from dataclasses import dataclass

# Where each width class starts, in px of chart width; dashboard.css has a matching container
# query for each (tests/workflows/test_dashboard_timeline.py checks they agree).
WIDTH_CLASSES = (0, 160, 240, 320, 480, 640)
# The width the first class is laid out for: narrower charts may see labels touch.
NARROWEST_PX = 120
MAX_LABELS = 6
FONT_PX = 11
GAP_PX = 12
# Advance widths (em) in DejaVu Sans, the widest of the usual sans-serif fonts.
CHAR_EM = {".": 0.318, " ": 0.318, "m": 0.974, "s": 0.521, "i": 0.278, "n": 0.634, "h": 0.634}
DIGIT_EM = 0.636
# (spans shorter than this in seconds, seconds per unit, unit)
UNITS = ((1.0, 0.001, "ms"), (300.0, 1.0, "s"), (7200.0, 60.0, "min"), (math.inf, 3600.0, "h"))


@dataclass(frozen=True)
class Tick:
    left: float  # percent of the chart's width
    label: str
    anchor: str  # SVG text-anchor: the first label starts at its tick, one at the right edge ends there


@dataclass(frozen=True)
class Axis:
    ticks: tuple[Tick, ...]
    width_classes: tuple[int, ...]  # indexes into WIDTH_CLASSES where this axis is the one shown


def time_axes(span: float) -> list[Axis]:
    """The axis for each width class of a chart `span` seconds long, classes sharing one axis
    merged."""
    axes: list[Axis] = []
    for index, start in enumerate(WIDTH_CLASSES):
        ticks = axis_ticks(span, max(start, NARROWEST_PX))
        if axes and axes[-1].ticks == ticks:
            axes[-1] = Axis(ticks, (*axes[-1].width_classes, index))
        else:
            axes.append(Axis(ticks, (index,)))
    return axes


def axis_ticks(span: float, width: float) -> tuple[Tick, ...]:
    """The densest nice ticks from 0 to `span` seconds whose labels fit `width` px apart."""
    _, unit_seconds, unit = next(row for row in UNITS if span < row[0])
    extent = span / unit_seconds
    for step in _nice_steps(extent / MAX_LABELS):
        if step > extent:
            break
        if int(extent / step + 1e-9) + 1 > MAX_LABELS:
            continue
        ticks = _ticks(extent, step, unit, width)
        if ticks is not None:
            return ticks
    return (Tick(0.0, "0", "start"),)


def _nice_steps(smallest: float):
    """1, 2, 5, 10, 20, 50... (times a power of ten), from the first at least `smallest`."""
    exponent = math.floor(math.log10(smallest)) if smallest > 0 else -3
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if step >= smallest * (1 - 1e-9):
                yield step
        exponent += 1


def _ticks(extent: float, step: float, unit: str, width: float) -> tuple[Tick, ...] | None:
    """Ticks every `step` units on [0, extent]; None if their labels would overlap at `width`."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    count = int(extent / step + 1e-9) + 1
    ticks, right_of_previous = [], -math.inf
    for i in range(count):
        value = i * step
        label = f"{_number(value, decimals)} {unit}" if i else "0"
        x, size = value / extent * width, label_px(label)
        if i == 0:
            anchor, left = "start", x
        elif x + size / 2 > width:
            anchor, left = "end", x - size
        else:
            anchor, left = "middle", x - size / 2
        if left < right_of_previous + GAP_PX:
            return None
        right_of_previous = left + size
        ticks.append(Tick(value / extent * 100, label, anchor))
    return tuple(ticks)


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def label_px(label: str) -> float:
    """How wide `label` is drawn at most, in px."""
    return sum(DIGIT_EM if char.isdigit() else CHAR_EM.get(char, 1.0) for char in label) * FONT_PX
