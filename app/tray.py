"""A system-tray icon while indexing runs, where the desktop has a tray: a ring that fills with progress
and a tooltip with the same words as the progress line. Clicking it brings the window back.

Nothing is shown (or created) without a tray: QSystemTrayIcon.isSystemTrayAvailable() decides.
"""

from __future__ import annotations

from almanac.core.indexer import Progress
from PySide6.QtCore import QObject, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from .status_bar import describe

ICON_PX = 64


def progress_icon(fraction: float | None, size: int = ICON_PX) -> QIcon:
    """A ring filled to `fraction` (0..1); None draws an open ring for "busy, amount unknown"."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    width = size / 8
    rect = QRectF(width, width, size - 2 * width, size - 2 * width)
    painter.setPen(QPen(QColor(128, 128, 128, 110), width))
    painter.drawEllipse(rect)
    pen = QPen(QColor(46, 125, 220), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    # Qt angles are in 1/16 degree, counter-clockwise from three o'clock: start at twelve, go clockwise.
    span = 90 if fraction is None else max(0.02, min(fraction, 1.0)) * 360
    painter.drawArc(rect, 90 * 16, -int(span * 16))
    painter.end()
    return QIcon(pixmap)


class IndexTray(QObject):
    def __init__(self, window: QWidget, *, available: bool | None = None) -> None:
        super().__init__(window)
        self._window = window
        if available is None:
            available = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon: QSystemTrayIcon | None = None
        if available:
            self.icon = QSystemTrayIcon(progress_icon(None), self)
            self.icon.activated.connect(self._activated)
        self.fraction: float | None = None
        self.tooltip = ""

    def set_busy(self, busy: bool) -> None:
        if busy:
            self.show_progress(Progress("scanning"))
        if self.icon is not None:
            self.icon.setVisible(busy)

    def show_progress(self, p: Progress) -> None:
        words, done, total = describe(p)
        fraction = done / total if total else None
        self.tooltip = f"Almanac — {words}"
        if self.icon is None:
            return
        self.icon.setToolTip(self.tooltip)
        # Repaint only when the ring visibly moves (2% steps), not on every progress report.
        if fraction is None or self.fraction is None or abs(fraction - self.fraction) >= 0.02:
            self.fraction = fraction
            self.icon.setIcon(progress_icon(fraction))

    def _activated(self, _reason: QSystemTrayIcon.ActivationReason) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()
