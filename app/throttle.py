"""Fold a burst of updates from a worker thread into at most one GUI update per interval.

After qutebrowser's `misc/throttle.py`: the worker pushes every update, the GUI gets the latest (or the
merged) value on a single-shot timer. At most one queued event is in flight at a time, so 20,000 files
never become 20,000 signals, and the last value is always delivered (no update is lost at the end).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

_EMPTY = object()


class Throttle(QObject):
    _wake = Signal()

    def __init__(
        self,
        deliver: Callable[[Any], None],
        interval_ms: int,
        *,
        merge: Callable[[Any, Any], Any] | None = None,
        parent: QObject | None = None,
    ) -> None:
        """`deliver(value)` runs on the GUI thread; `merge(old, new)` combines pending values (default: keep
        the newest)."""
        super().__init__(parent)
        self._deliver = deliver
        self._interval_s = interval_ms / 1000
        self._merge = merge
        self._lock = threading.Lock()
        self._value: Any = _EMPTY
        self._woken = False
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        self._wake.connect(self._on_wake, Qt.ConnectionType.QueuedConnection)

    def push(self, value: Any) -> None:
        """Any thread."""
        with self._lock:
            if self._value is _EMPTY or self._merge is None:
                self._value = value
            else:
                self._value = self._merge(self._value, value)
            if self._woken:
                return
            self._woken = True
        self._wake.emit()

    def flush(self) -> None:
        """GUI thread: deliver what is pending now (call it before a final result, so order holds)."""
        self._timer.stop()
        with self._lock:
            value, self._value = self._value, _EMPTY
            self._woken = False
        if value is _EMPTY:
            return
        self._last = time.monotonic()
        self._deliver(value)

    def discard(self) -> None:
        """GUI thread: drop what is pending."""
        self._timer.stop()
        with self._lock:
            self._value = _EMPTY
            self._woken = False

    def _on_wake(self) -> None:
        with self._lock:
            if not self._woken:
                return  # flushed or discarded since the wake-up was queued
        wait = self._interval_s - (time.monotonic() - self._last)
        if wait <= 0:
            self.flush()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)
