"""Cooperative cancellation and pausing: the caller flips flags, core checks them between units of work."""

from __future__ import annotations

import threading

from .errors import Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # a paused worker must wake up to notice

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise `Cancelled` once cancelled."""
        self._running.wait()
        if self._cancelled.is_set():
            raise Cancelled()
