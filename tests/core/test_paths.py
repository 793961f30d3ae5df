"""The one "is this path under that folder" helper."""

from __future__ import annotations

from pathlib import Path

import pytest
from almanac.core.paths import is_within


@pytest.mark.parametrize(
    ("path", "folder", "inside"),
    [
        ("/home/ana/docs", "/home/ana/docs", True),
        ("/home/ana/docs/a.txt", "/home/ana/docs", True),
        ("/home/ana/docs/x/y/z.md", "/home/ana/docs/", True),
        ("/home/ana/docs2/a.txt", "/home/ana/docs", False),  # a sibling sharing a prefix
        ("/home/ana/doc", "/home/ana/docs", False),
        ("/home/ana", "/home/ana/docs", False),
        ("/home/ana/d\udcffcs/a.txt", "/home/ana/d\udcffcs", True),  # an undecodable name
    ],
)
def test_is_within(path, folder, inside):
    assert is_within(path, folder) is inside
    assert is_within(Path(path), Path(folder)) is inside
