"""A slim banner above the chat when a drift signal trips (core.drift), linking to Insights."""

from __future__ import annotations

from almanac.core.drift import Signal as DriftSignal
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class DriftBanner(QFrame):
    openInsights = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("driftBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#driftBanner { background: #fff4ce; border: 1px solid #e0c060; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.details = QPushButton("Open Insights")
        self.dismiss = QPushButton("Dismiss")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.dismiss)
        self.details.clicked.connect(lambda: self.openInsights.emit())
        self.dismiss.clicked.connect(self.hide)
        self._dismissed: set[str] = set()
        self.dismiss.clicked.connect(self._remember_dismissed)
        self._shown: set[str] = set()
        self.hide()

    def show_signals(self, signals: list[DriftSignal]) -> None:
        """Show the tripped signals; one the user dismissed stays hidden until it clears and trips again."""
        tripped = [s for s in signals if s.tripped]
        self._dismissed &= {s.name for s in tripped}
        fresh = [s for s in tripped if s.name not in self._dismissed]
        self._shown = {s.name for s in fresh}
        if not fresh:
            self.hide()
            return
        self.label.setText("Retrieval may be drifting: " + "; ".join(s.why for s in fresh) + ".")
        self.show()

    def _remember_dismissed(self) -> None:
        self._dismissed |= self._shown
