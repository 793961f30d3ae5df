"""`almanac gui --smoke-seconds N`, which the installer's smoke test (packaging/smoke_test.py) runs on the built
program: the window is shown, the line saying so is printed, and the app quits by itself with exit status 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a whole app start in a fresh process


def test_gui_smoke_seconds_shows_the_window_and_exits_cleanly(tmp_path):
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # Qt settings (window layout) stay out of the real home
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "almanac.cli.main", "gui", "--smoke-seconds", "0.5"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "smoke: window shown after" in proc.stdout
