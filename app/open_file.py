"""'Open File' for an indexed document: open it to read, never run it.

The desktop's default action for a script or launcher is to run it (Windows runs .bat, .cmd, .js, .vbs and
.ps1 files; a file manager may run an executable .sh, and .desktop or .command files are launchers). Such a
file is shown in its folder instead, where the user can pick an editor; its text is in the app's own preview.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from almanac.core.store import path_from_db
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

# Suffixes whose default "open" action executes the file on some desktop (Windows runs scripts of any
# installed interpreter that registered its suffix: Python, Ruby, Perl, Tcl).
RUNNABLE_SUFFIXES = frozenset(
    """
    .bat .cmd .com .exe .msi .msp .msc .scr .pif .cpl .lnk .url .scf .reg .inf .hta .ps1 .psm1 .psd1 .psc1
    .vbs .vbe .js .jse .wsf .wsh .ws .jar .jnlp .application .appref-ms .settingcontent-ms .py .pyw .pyz
    .rb .rbw .pl .tcl .sh .bash .zsh .fish .csh .ksh .command .tool .terminal .desktop .run .appimage .app
    .action .workflow .scpt .applescript .pkg .mpkg .deb .rpm .apk
    """.split()
)


def runs_when_opened(path: Path) -> bool:
    """Would the desktop's default action run this file rather than show it?"""
    if path.suffix.lower() in RUNNABLE_SUFFIXES:
        return True
    if os.name != "posix":  # Windows decides by suffix alone (and os.access reports every file executable)
        return False
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))


def _show_folder_of(path: Path) -> Path:
    folder = path.parent
    while folder.suffix.lower() in RUNNABLE_SUFFIXES and folder != folder.parent:
        folder = folder.parent  # a macOS ".app" bundle is a folder that opening runs
    return folder


def open_for_viewing(path: str, open_url: Callable[[QUrl], bool] | None = None) -> bool:
    """Open a document in the user's application, or, for a script or executable, show its folder.

    `open_url` defaults to QDesktopServices.openUrl, looked up at each call so a test can replace it."""
    target = Path(path_from_db(path))  # a search hit carries the name as stored
    if runs_when_opened(target):
        target = _show_folder_of(target)
    return (open_url or QDesktopServices.openUrl)(QUrl.fromLocalFile(str(target)))
