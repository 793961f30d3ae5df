"""The desktop app (PySide6). Everything Qt lives here; `almanac.core` knows nothing of it."""

from .qt_fixes import fix_emit_refcount, fix_none_refcount

# Before any widget is touched or signal emitted: see qt_fixes for the PySide6 6.12.0 reference leaks.
fix_emit_refcount()
fix_none_refcount()
