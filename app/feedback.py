"""Thumbs up / down for an answer, and "helped / did not help" for a source: small toggle pairs whose
state is one value (+1, -1 or 0), recorded in the query log through the insights thread."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QToolButton, QWidget


class FeedbackPair(QWidget):
    """Two exclusive toggles; clicking the checked one clears it. `changed(value)` with +1, -1 or 0."""

    changed = Signal(int)

    def __init__(
        self,
        up: str = "✓",
        down: str = "✗",
        *,
        up_tip: str = "Good answer",
        down_tip: str = "Bad answer",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.up = QToolButton(text=up, checkable=True, toolTip=up_tip, autoRaise=True)
        self.down = QToolButton(text=down, checkable=True, toolTip=down_tip, autoRaise=True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.up)
        layout.addWidget(self.down)
        self.up.clicked.connect(lambda on: self._clicked(1, on))
        self.down.clicked.connect(lambda on: self._clicked(-1, on))

    @property
    def value(self) -> int:
        return 1 if self.up.isChecked() else -1 if self.down.isChecked() else 0

    def set_value(self, value: int) -> None:
        """Show a stored value without emitting `changed`."""
        self.up.setChecked(value > 0)
        self.down.setChecked(value < 0)

    def _clicked(self, which: int, on: bool) -> None:
        self.set_value(which if on else 0)
        self.changed.emit(self.value)
