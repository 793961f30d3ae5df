"""Insights: what the query log says about speed, retrieval quality and drift, as charts (pyqtgraph).

The numbers come from `core.stats.summarize` and `core.drift.detect`, computed on a job thread; this module
only draws them. `almanac stats` prints the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pyqtgraph as pg
from almanac.core.outcomes import DESCRIPTIONS
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

PERIODS = [("Last 7 days", "7d"), ("Last 30 days", "30d"), ("Last 90 days", "90d")]
# The stages drawn over time: what the user waits for.
CHART_STAGES = ["total", "first token", "quick answer", "vector search", "keyword search", "embed query"]
COLORS = ["#3465a4", "#cc0000", "#4e9a06", "#c4a000", "#75507b", "#ce5c00"]


@dataclass
class InsightsData:
    summary: dict
    drift: list[dict]
    self_eval: list[dict]


def _day_ts(date: str) -> float:
    return time.mktime(time.strptime(date, "%Y-%m-%d"))


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


class InsightsView(QWidget):
    """Charts and figures for one period. `load(data)` draws; `refresh_requested(period)` asks for data."""

    refresh_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.period = QComboBox()
        for label, value in PERIODS:
            self.period.addItem(label, value)
        self.refresh = QPushButton("Refresh")
        self.figures = QLabel()
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        self.figures.setWordWrap(True)
        self.drift = QLabel()
        self.drift.setTextFormat(Qt.TextFormat.RichText)
        self.drift.setWordWrap(True)
        self.drift.setFrameShape(QFrame.Shape.StyledPanel)

        axis = {"bottom": pg.DateAxisItem()}
        self.latency = pg.PlotWidget(title="Latency per stage, ms (p50 solid, p95 dashed)", axisItems=axis)
        self.latency.addLegend(offset=(-10, 10))
        self.latency.setLogMode(y=True)  # milliseconds of search and seconds of generation on one chart
        self.volume = pg.PlotWidget(title="Queries per day", axisItems={"bottom": pg.DateAxisItem()})
        self.quality = pg.PlotWidget(
            title="Self-evaluation (hybrid MRR@10)", axisItems={"bottom": pg.DateAxisItem()}
        )
        self.quality.setYRange(0, 1)

        top = QHBoxLayout()
        top.addWidget(self.period)
        top.addWidget(self.refresh)
        top.addStretch(1)
        charts = QGridLayout()
        charts.addWidget(self.latency, 0, 0, 1, 2)
        charts.addWidget(self.volume, 1, 0)
        charts.addWidget(self.quality, 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.drift)
        layout.addWidget(self.figures)
        layout.addLayout(charts, 1)

        self.refresh.clicked.connect(self._ask)
        self.period.currentIndexChanged.connect(self._ask)

    def _ask(self) -> None:
        self.refresh_requested.emit(self.period.currentData())

    def load(self, data: InsightsData) -> None:
        s = data.summary
        tok = s["tokens_per_answer"]
        cache = s["cache"]
        fb = s["feedback"]
        errors = ", ".join(f"{n} × {DESCRIPTIONS.get(cat, cat)}" for cat, n in s["error_categories"].items())
        self.figures.setText(
            f"<b>{s['queries']}</b> queries ({s['asks']} questions, {s['searches']} searches) · "
            f"retrieval hit rate <b>{_rate(s['retrieval_hit_rate'])}</b> · "
            f"not in your files <b>{_rate(s['not_in_files_rate'])}</b> · "
            f"cache hits <b>{_rate(cache['hit_rate'])}</b> ({cache['time_saved_ms'] / 1000:.1f} s saved) · "
            f"tokens per answer <b>{tok['p50'] if tok['p50'] is not None else '—'}</b> · "
            f"feedback {fb['up']} helpful, {fb['down']} not; sources {fb['sources_helped']} helped, "
            f"{fb['sources_not_helped']} did not" + (f"<br>Errors: {errors}" if errors else "")
        )
        lines = []
        for sig in data.drift:
            mark = "⚠️ <b>" if sig["tripped"] else "✓ "
            end = "</b>" if sig["tripped"] else ""
            lines.append(
                f"{mark}{sig['name'].replace('_', ' ')}{end}: {sig['why']} "
                f"<span style='color:gray'>(threshold: {sig['threshold']})</span>"
            )
        self.drift.setText("<br>".join(lines))

        self.latency.clear()
        by_day = s["stages_ms_by_day"]
        for color, stage in zip(COLORS, [st for st in CHART_STAGES if st in by_day], strict=False):
            for key, style, name in (
                ("p50", Qt.PenStyle.SolidLine, stage),
                ("p95", Qt.PenStyle.DashLine, None),
            ):
                pts = [(_day_ts(p["date"]), p[key]) for p in by_day[stage] if p[key] is not None]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    self.latency.plot(
                        list(xs),
                        list(ys),
                        pen=pg.mkPen(color, width=2, style=style),
                        symbol="o",
                        symbolSize=5,
                        symbolBrush=color,
                        name=name,
                    )
        self.volume.clear()
        days = s["queries_per_day"]
        if days:
            xs = [_day_ts(d["date"]) + 43200 for d in days]
            self.volume.addItem(
                pg.BarGraphItem(x=xs, height=[d["queries"] for d in days], width=60000, brush="#729fcf")
            )
        self.quality.clear()
        runs = [(r["ts"], r["scores"].get("hybrid", {}).get("mrr@10")) for r in data.self_eval]
        runs = [(t, v) for t, v in runs if v is not None]
        if runs:
            xs, ys = zip(*runs, strict=True)
            self.quality.plot(list(xs), list(ys), pen=pg.mkPen("#4e9a06", width=2), symbol="o")


class InsightsDialog(QDialog):
    """A window around `InsightsView`; `loader(period)` is called on refresh and must end in `load()`."""

    def __init__(self, loader: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Insights")
        self.resize(960, 720)
        self.view = InsightsView(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        self.view.refresh_requested.connect(loader)
