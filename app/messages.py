"""Every message box comes from here (after qutebrowser's `misc/msgbox.py`): non-modal, deleted on close.

`report_exception` is the one place errors are shown: `Cancelled` is ignored, an `AlmanacError` is shown as
its plain message with a way forward, anything else is a bug, logged with its traceback and shown as a
short crash notice that points at the log file. The user never sees a raw traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from almanac.core import paths
from almanac.core.errors import AlmanacError, Cancelled, ModelError
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

log = logging.getLogger(__name__)

Icon = QMessageBox.Icon
Role = QMessageBox.ButtonRole


def message_box(
    parent: QWidget | None,
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    *,
    informative: str = "",
    buttons: Sequence[tuple[str, QMessageBox.ButtonRole, Callable[[], None] | None]] = (),
    show: bool = True,
) -> QMessageBox:
    """A non-modal box; each button is (label, role, callback run when it is clicked)."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.setTextFormat(Qt.TextFormat.PlainText)
    if informative:
        box.setInformativeText(informative)
    callbacks = {}
    for label, role, callback in buttons or (("OK", Role.AcceptRole, None),):
        callbacks[box.addButton(label, role)] = callback

    def clicked(button: object) -> None:
        callback = callbacks.get(button)
        if callback is not None:
            callback()

    box.buttonClicked.connect(clicked)
    if show:
        box.show()
    return box


def ask(
    parent: QWidget | None,
    title: str,
    text: str,
    *,
    yes: str,
    on_yes: Callable[[], None],
    no: str = "Cancel",
    on_no: Callable[[], None] | None = None,
    informative: str = "",
) -> QMessageBox:
    return message_box(
        parent,
        Icon.Question,
        title,
        text,
        informative=informative,
        buttons=((yes, Role.AcceptRole, on_yes), (no, Role.RejectRole, on_no)),
    )


class ErrorReporter(QObject):
    """Shows errors from anywhere in the app; `shown` lets tests (and the status bar) see what was shown."""

    shown = Signal(str, str)  # kind ("error" | "crash"), message

    def __init__(self, parent: QWidget, *, open_settings: Callable[[], None]) -> None:
        super().__init__(parent)
        self._window = parent
        self._open_settings = open_settings
        self._open: dict[str, QMessageBox] = {}  # message -> its box, so one problem shows one box

    def report(self, err: BaseException) -> None:
        """GUI thread only."""
        if isinstance(err, Cancelled):
            return
        if isinstance(err, AlmanacError):
            log.warning("%s: %s", type(err).__name__, err)
            self.show_error(err)
        else:
            log.error("unexpected error", exc_info=(type(err), err, err.__traceback__))
            self.show_crash()

    def show_error(self, err: AlmanacError) -> QMessageBox:
        text = str(err)
        if text in self._open:
            box = self._open[text]
            box.raise_()
            return box
        buttons: list[tuple[str, QMessageBox.ButtonRole, Callable[[], None] | None]] = []
        if isinstance(err, ModelError):
            buttons.append(("Open Settings…", Role.ActionRole, self._open_settings))
        buttons.append(("OK", Role.AcceptRole, None))
        self.shown.emit("error", text)
        box = message_box(self._window, Icon.Warning, "Almanac", text, buttons=buttons)
        self._open[text] = box
        box.finished.connect(lambda _result: self._open.pop(text, None))
        return box

    def show_crash(self) -> QMessageBox:
        self.shown.emit("crash", log_file_hint())
        return crash_box(self._window)


def log_file_hint() -> str:
    return str(paths.log_dir() / "almanac.log")


def crash_box(parent: QWidget | None) -> QMessageBox:
    def open_logs() -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_dir())))

    return message_box(
        parent,
        Icon.Critical,
        "Almanac",
        "Something went wrong inside Almanac. Your files and index are safe; you can keep working.",
        informative=f"The details were written to {log_file_hint()}. Please include that file when you"
        " report the problem.",
        buttons=(("Open Log Folder", Role.ActionRole, open_logs), ("OK", Role.AcceptRole, None)),
    )


def top_window() -> QWidget | None:
    app = QApplication.instance()
    return app.activeWindow() if isinstance(app, QApplication) else None
