"""Where the time of the selected answer went: one horizontal bar per stage, and the token figures."""

from __future__ import annotations

from almanac.core.answer import Answer
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

ROW_HEIGHT = 20
LABEL_WIDTH = 110
VALUE_WIDTH = 78


def format_ms(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 10_000 else f"{ms:,.1f} ms"


class StageBars(QWidget):
    """Paints each stage as a bar scaled to the longest one. Colours come from the palette."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stages: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_stages(self, stages: dict[str, float]) -> None:
        self._stages = list(stages.items())
        self.updateGeometry()
        self.update()

    def stages(self) -> list[tuple[str, float]]:
        return list(self._stages)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(320, max(1, len(self._stages)) * ROW_HEIGHT + 4)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(LABEL_WIDTH + VALUE_WIDTH + 40, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        bar = palette.color(QPalette.ColorRole.Highlight)
        track = palette.color(QPalette.ColorRole.Mid)
        track.setAlpha(60)
        if not self._stages:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "No answer selected."
            )
            return
        longest = max(ms for _, ms in self._stages) or 1.0
        bar_width = max(10, self.width() - LABEL_WIDTH - VALUE_WIDTH - 12)
        for row, (name, ms) in enumerate(self._stages):
            y = 2 + row * ROW_HEIGHT
            painter.setPen(text)
            label = self.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, LABEL_WIDTH - 6)
            painter.drawText(
                QRectF(0, y, LABEL_WIDTH - 6, ROW_HEIGHT),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            body = QRectF(LABEL_WIDTH, y + 4, bar_width, ROW_HEIGHT - 8)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(body, 3, 3)
            filled = QRectF(body.x(), body.y(), max(2.0, bar_width * ms / longest), body.height())
            painter.setBrush(bar)
            painter.drawRoundedRect(filled, 3, 3)
            painter.setPen(text)
            painter.drawText(
                QRectF(LABEL_WIDTH + bar_width + 6, y, VALUE_WIDTH, ROW_HEIGHT),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                format_ms(ms),
            )


class TimingPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Timings", self)
        self.title.setObjectName("panelTitle")
        bold_title = self.title.font()
        bold_title.setBold(True)
        self.title.setFont(bold_title)
        self.bars = StageBars(self)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.bars)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        self.set_answer(None)

    def set_answer(self, answer: Answer | None) -> None:
        if answer is None:
            self.bars.set_stages({})
            self.title.setText("Timings")
            self.summary.clear()
            return
        self.bars.set_stages(answer.timings.stages)
        self.title.setText(f"Timings (total {format_ms(answer.timings.total_ms)})")
        parts = []
        if answer.answer_tokens or answer.prompt_tokens:
            parts.append(f"First token after {format_ms(answer.ttft_ms)}")
            parts.append(f"{answer.prompt_tokens:,} prompt tokens, {answer.answer_tokens:,} answer tokens")
            parts.append(f"{answer.tokens_per_s:.1f} tokens/s")
        if answer.model:
            parts.append(f"model {answer.model}")
        self.summary.setText(" · ".join(parts))
