"""`almanac gui`: set up logging and the crash handler, show the window, run the event loop."""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from types import TracebackType

from almanac.core import paths
from almanac.core.errors import IndexInUseError
from almanac.core.writer_lock import WriterLock
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from . import jobs, messages
from .system_check import preflight

log = logging.getLogger("almanac.app")


def setup_logging() -> logging.Handler:
    """Log to <data dir>/logs/almanac.log (rotated), which is what the crash notice points at."""
    handler = logging.handlers.RotatingFileHandler(
        paths.log_dir() / "almanac.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    # The file gets INFO; handlers already there (the CLI's stderr one) keep the level they showed.
    for existing in root.handlers:
        if existing.level == logging.NOTSET:
            existing.setLevel(root.getEffectiveLevel())
    root.addHandler(handler)
    root.setLevel(min(root.getEffectiveLevel(), logging.INFO))
    return handler


def install_excepthook() -> None:
    """Unexpected exceptions (on any thread) are logged and shown as a crash notice, never as a traceback."""

    def on_exception(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, err, tb)
            return
        log.critical("unhandled exception", exc_info=(kind, err, tb))
        app = QApplication.instance()
        if app is None:
            return  # before the window: the log has it
        if threading.current_thread() is threading.main_thread():
            messages.crash_box(messages.top_window())
        else:  # widgets belong to the GUI thread: show the notice from there. The app as context is what
            # makes it run there: without one, the timer would belong to this thread, which has no event
            # loop, and never fire.
            QTimer.singleShot(0, app, lambda: messages.crash_box(messages.top_window()))

    sys.excepthook = on_exception
    threading.excepthook = lambda args: on_exception(args.exc_type, args.exc_value, args.exc_traceback)


def quit_on_signals(app: QApplication) -> None:
    """Ctrl+C or SIGTERM closes the app cleanly (threads joined, models closed) instead of killing it."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: app.quit())
    # Python runs signal handlers only between bytecodes; a idle timer lets it in while Qt waits.
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def already_running() -> bool:
    """Another Almanac writes to this data folder (a window, `almanac index`, `almanac watch`): say so, and
    by whom, instead of opening a second writer. A probe: the index thread takes the lock for real when it
    opens the library, and a writer that slips in between is refused there with the same message."""
    try:
        with WriterLock(paths.db_path()):
            return False
    except IndexInUseError as err:
        log.warning("not starting: %s", err)
        informative = "To open a second library at once, start it with `almanac --data-dir DIR gui`."
        box = messages.message_box(
            None,
            messages.Icon.Warning,
            "Almanac is already running",
            str(err),
            informative=informative,
            buttons=(("Quit", messages.Role.AcceptRole, None),),
        )
        # A loop of its own, not app.exec(): the application has not started and must not be marked done.
        loop = QEventLoop()
        box.finished.connect(loop.quit)
        loop.exec()
        return True


def run(argv: list[str] | None = None, *, smoke_seconds: float | None = None) -> int:
    """Show the window and run the event loop. `smoke_seconds`: print when the event loop is running with
    the window shown, then quit after that many seconds (the installer's smoke test, packaging/smoke_test.py).
    """
    if QApplication.instance() is None and preflight():
        return 1  # a system library Qt needs is missing: what to install was printed, not Qt's abort
    start = time.perf_counter()
    setup_logging()
    install_excepthook()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("Almanac")
    app.setApplicationName("Almanac")
    app.setApplicationDisplayName("Almanac")
    if already_running():
        return 1
    from .main_window import MainWindow  # after QApplication: the window pulls in the core and its models

    window = MainWindow()
    window.show()
    quit_on_signals(app)
    log.info("window shown after %.0f ms; data in %s", (time.perf_counter() - start) * 1000, paths.data_dir())
    if smoke_seconds is not None:
        shown_ms = (time.perf_counter() - start) * 1000
        QTimer.singleShot(0, app, lambda: print(f"smoke: window shown after {shown_ms:.0f} ms", flush=True))
        QTimer.singleShot(int(smoke_seconds * 1000), app, app.quit)
    code = 1
    try:
        code = app.exec()
    finally:
        window.shutdown()
        log.info("stopped")
        end_if_stuck(code)
    return code


def end_if_stuck(code: int) -> None:
    """A job that would not stop (a native call that ignores cancellation) must not keep the process alive
    after its window closed, nor abort it at exit (Qt does when a running QThread is destroyed): log it
    and end the process here, the index being consistent after every transaction anyway."""
    stuck = jobs.stuck_threads()
    if not stuck:
        return
    log.error("ending the process: %s did not stop", ", ".join(stuck))
    logging.shutdown()
    os._exit(code)
