"""One way to run work off the GUI thread (after Anki's QueryOp): a named thread that runs jobs in order.

A job is a plain function run on the thread. Its result, or the exception it raised, comes back to the GUI
thread through one queued signal, and the job's `success` / `failure` callbacks run there. Jobs never touch
widgets: anything a job wants shown goes through `post()`, which runs a callable on the GUI thread.

Running jobs serially on one thread is what keeps the index to one writer (Anki's `max_workers=1`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal

log = logging.getLogger(__name__)

FailureFn = Callable[[BaseException], None]
SLOW_STOP_MS = 5_000  # then a note in the log
STOP_TIMEOUT_MS = 20_000  # then the thread is given up on (see JobThread.stop)
_STUCK: set[JobThread] = set()


def stuck_threads() -> list[str]:
    """Names of job threads that did not stop when asked and are still running."""
    return sorted(t.objectName() for t in list(_STUCK) if t.isRunning())


@dataclass
class _Job:
    fn: Callable[[], Any]
    success: Callable[[Any], None] | None
    failure: FailureFn | None
    final: bool = False  # runs even while stopping (closing what the thread owns)


class JobThread(QThread):
    """A worker thread with a job queue. Create, submit and stop it from the GUI thread."""

    _deliver = Signal(object, object)  # (callable, args): run on the GUI thread

    def __init__(self, name: str, *, on_error: FailureFn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._on_error = on_error
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._closed = False  # GUI side: once stopped, late deliveries are dropped
        # The thread object lives in the GUI thread, so queued deliveries run there.
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)
        self.start()

    # -- GUI thread ------------------------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[[], Any],
        *,
        success: Callable[[Any], None] | None = None,
        failure: FailureFn | None = None,
    ) -> None:
        """Queue `fn` to run on this thread after the jobs before it. Ignored once stopping."""
        if self._stopping.is_set():
            return
        self._queue.put(_Job(fn, success, failure))

    def stop(self, final: Callable[[], Any] | None = None, *, timeout_ms: int | None = None) -> bool:
        """Skip the queued jobs, run `final` on the thread (to close what it owns) and join it.

        The running job is not interrupted: cancel it first (its CancelToken or flag). Every job checks for
        cancellation or is bounded, so this normally returns soon. A job that does not finish within
        `timeout_ms` (STOP_TIMEOUT_MS by default) is given up on: the thread is left to run, kept referenced
        (a QThread destroyed while running aborts the process), listed by `stuck_threads()`, and this
        returns False, so the app can end the process instead of lingering after its window closed.
        """
        if not self._stopping.is_set():
            self._stopping.set()
            if final is not None:
                self._queue.put(_Job(final, None, None, final=True))
            self._queue.put(None)
        timeout_ms = STOP_TIMEOUT_MS if timeout_ms is None else timeout_ms
        self._closed = True
        if self.wait(min(SLOW_STOP_MS, timeout_ms)):
            return True
        log.info("waiting for thread %s to finish its job", self.objectName())
        if self.wait(max(0, timeout_ms - SLOW_STOP_MS)):
            return True
        log.warning("thread %s did not stop within %.0f s; leaving it", self.objectName(), timeout_ms / 1000)
        _STUCK.add(self)
        return False

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _on_deliver(self, fn: Callable[..., Any], args: tuple) -> None:
        if self._closed:
            return  # the window is going away; its widgets may already be gone
        fn(*args)

    # -- any thread ------------------------------------------------------------------------------------

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the GUI thread, soon (safe to call from the worker thread)."""
        self._deliver.emit(fn, args)

    # -- worker thread ---------------------------------------------------------------------------------

    def run(self) -> None:
        threading.current_thread().name = self.objectName()  # readable thread names in the log
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._stopping.is_set() and not job.final:
                continue
            try:
                result = job.fn()
            except Exception as err:  # every failure goes back to the GUI thread, typed, never lost
                if job.final:
                    log.exception("closing %s failed", self.objectName())
                else:
                    self.post(job.failure or self._on_error, err)
            else:
                if job.success is not None:
                    self.post(job.success, result)
