"""Work-arounds for bugs in the Qt bindings, each detected before it is applied.

PySide6 6.12.0: `SignalInstance.emit()` returns `True` without taking a reference to it, so every emit of a
signal declared in Python drops one reference to `True`. On Python 3.11 (where `True` is not yet immortal)
a busy app then aborts with "Fatal Python error: bool_dealloc" once the count reaches zero, often at exit.
The fix wraps `emit` to take the missing reference; it is applied only where a probe shows the leak.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None
_PROBES = 16


class _Probe(QObject):
    ping = Signal()


def emit_leaks_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    return before - sys.getrefcount(True) >= _PROBES


def fix_emit_refcount() -> bool:
    """Patch `SignalInstance.emit` if it leaks; True when the patch was applied (now or before)."""
    if getattr(SignalInstance.emit, "_almanac_fixed", False):
        return True
    if not emit_leaks_true():
        return False
    original = SignalInstance.emit

    def emit(self: SignalInstance, *args: object) -> object:
        result = original(self, *args)
        _incref(result)  # the reference emit() should have returned; extra ones on True/False are harmless
        return result

    emit._almanac_fixed = True  # type: ignore[attr-defined]
    SignalInstance.emit = emit
    return True
