"""core/ must never import Qt (or app/): it is a library the CLI and benchmarks use without a GUI."""

import subprocess
import sys
from pathlib import Path

import almanac.core

CHECK = r"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6") or name.startswith("almanac.app"):
            raise ImportError(f"core imported {name}")
sys.meta_path.insert(0, Block())
import almanac.core
for mod in pkgutil.walk_packages(almanac.core.__path__, "almanac.core."):
    importlib.import_module(mod.name)
print("ok", len(list(pkgutil.walk_packages(almanac.core.__path__))))
"""


def test_every_core_module_imports_without_qt():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n_modules = int(out.stdout.split()[1])
    assert n_modules >= len(list(Path(almanac.core.__file__).parent.glob("*.py"))) - 1
