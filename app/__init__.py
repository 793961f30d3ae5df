"""The desktop app (PySide6). Everything Qt lives here; `almanac.core` knows nothing of it."""

from .qt_fixes import fix_emit_refcount

fix_emit_refcount()  # before any signal is emitted: see qt_fixes for the PySide6 6.12.0 bug
