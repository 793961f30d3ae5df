"""`almanac --version`: the installed distribution's version (the packaged build's smoke test reads it)."""

from __future__ import annotations

import importlib.metadata

import pytest
from almanac.cli.main import main


def test_version_is_the_installed_distribution(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"almanac {importlib.metadata.version('almanac')}"
