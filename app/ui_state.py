"""Window geometry, splitter positions, the open tab and chat, and on/off choices such as paused
watching, remembered in <data dir>/ui.ini.

An ini file beside the index (not the platform's registry or plist) keeps all of Almanac's state in the one
data directory, so tests and `--data-dir` get their own.
"""

from __future__ import annotations

from almanac.core import paths
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget

DEFAULT_SIZE = (1320, 820)


class UiState:
    def __init__(self) -> None:
        self._ini = QSettings(str(paths.data_dir() / "ui.ini"), QSettings.Format.IniFormat)

    def restore(self, window: QMainWindow, splitters: dict[str, QSplitter], tabs: QTabWidget) -> None:
        geometry = self._ini.value("geometry")
        if geometry is None or not window.restoreGeometry(geometry):
            window.resize(*DEFAULT_SIZE)
        state = self._ini.value("window_state")
        if state is not None:
            window.restoreState(state)
        for name, splitter in splitters.items():
            value = self._ini.value(f"splitters/{name}")
            if value is not None:
                splitter.restoreState(value)
        tabs.setCurrentIndex(int(self._ini.value("sidebar_tab", 0)))

    def save(self, window: QMainWindow, splitters: dict[str, QSplitter], tabs: QTabWidget) -> None:
        self._ini.setValue("geometry", window.saveGeometry())
        self._ini.setValue("window_state", window.saveState())
        for name, splitter in splitters.items():
            self._ini.setValue(f"splitters/{name}", splitter.saveState())
        self._ini.setValue("sidebar_tab", tabs.currentIndex())
        self._ini.sync()

    @property
    def conversation(self) -> str:
        return str(self._ini.value("conversation", ""))

    @conversation.setter
    def conversation(self, conv_id: str) -> None:
        self._ini.setValue("conversation", conv_id)

    def flag(self, name: str) -> bool:
        """A remembered on/off choice (watching paused, suggestions hidden); False until set."""
        return str(self._ini.value(f"flags/{name}", "false")).lower() == "true"

    def set_flag(self, name: str, on: bool) -> None:
        self._ini.setValue(f"flags/{name}", "true" if on else "false")
        self._ini.sync()  # a crash or kill -9 later still remembers it
