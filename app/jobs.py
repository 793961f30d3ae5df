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
SLOW_STOP_MS = 5_000


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

    def stop(self, final: Callable[[], Any] | None = None) -> bool:
        """Skip the queued jobs, run `final` on the thread (to close what it owns) and join it.

        The running job is not interrupted: cancel it first (its CancelToken or flag). Every job either
        checks for cancellation or is bounded (loading a model), so this waits for as long as it takes:
        a QThread destroyed while running would abort the process.
        """
        if not self._stopping.is_set():
            self._stopping.set()
            if final is not None:
                self._queue.put(_Job(final, None, None, final=True))
            self._queue.put(None)
        if not self.wait(SLOW_STOP_MS):
            log.info("waiting for thread %s to finish its job", self.objectName())
            self.wait()
        self._closed = True
        return True

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
