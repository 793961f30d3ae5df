"""Work-arounds for bugs in the Qt bindings, each detected before it is applied.

PySide6 6.12.0: `SignalInstance.emit()` returns `True` without taking a reference to it, so every emit of a
signal declared in Python drops one reference to `True`. On Python 3.11 (where `True` is not yet immortal)
a busy app then aborts with "Fatal Python error: bool_dealloc" once the count reaches zero, often at exit.
The fix wraps `emit` to take the missing reference; it is applied only where a probe shows the leak.

The same release drops a reference to `None` on every call of a bound method that returns nothing
(`label.setText(...)`, `item.setData(...)`, `pdf_navigator.jump(...)`): a window that updates a few thousand
times aborts with "Fatal Python error: none_dealloc". The calls are everywhere, so instead of wrapping them,
`None` is given the reference count Python 3.12 gives every immortal object (PEP 683): it is never freed in
any case, so the count only has to stay above zero.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None
_PROBES = 16


_IMMORTAL_REFS = 1 << 40  # ~10^12 leaked references before the count could reach zero again


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


def void_call_leaks_none() -> bool:
    """True when calling a bound method that returns nothing drops a reference to `None`."""
    probe = _Probe()
    before = sys.getrefcount(None)
    for _ in range(_PROBES):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None) >= _PROBES


def fix_none_refcount() -> bool:
    """Make `None`, `True` and `False` immortal if void calls leak `None`; True when the fix is in place
    (now or before)."""
    if sys.getrefcount(None) >= _IMMORTAL_REFS:
        return True
    if not void_call_leaks_none():
        return False
    if not all(_immortal_layout(obj) for obj in (None, True, False)):
        return False  # not the layout this relies on (a debug build): leave it alone rather than guess
    # The same release drops references to True and False too, on paths too many to wrap: pyqtgraph's
    # addItem/removeItem drop about 12 per plot item (measured), so an Insights view redrawn a few hundred
    # times would abort with "bool_dealloc". They get the same treatment as None.
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _IMMORTAL_REFS  # under the GIL, as every change
    return True


def _immortal_layout(obj: object) -> bool:
    refcnt = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt: the first field of every object
    return abs(refcnt.value - sys.getrefcount(obj)) <= _PROBES and not hasattr(sys, "gettotalrefcount")
