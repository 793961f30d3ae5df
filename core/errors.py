"""Typed errors, split by who is to blame.

`AlmanacError` and its subclasses are environment problems the user can act on (missing model, unreadable
file, full disk, locked database): their message is shown as is. Anything else is a bug and reaches the
crash report.
"""

from __future__ import annotations


class AlmanacError(Exception):
    """A problem the user can fix; `str(err)` is a plain-language message."""


class ModelError(AlmanacError):
    """A model file is missing, unreadable or not a model."""


class DatabaseError(AlmanacError):
    """The index database is locked, read-only, full or corrupt."""


class IndexInUseError(DatabaseError):
    """Another process (or another Library in this one) is writing to the same index."""


class ExtractionError(AlmanacError):
    """One file could not be read; recorded against that file, never stops a run."""


class QueryError(AlmanacError):
    """A query that cannot be run as given (for example, empty)."""


class Cancelled(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by core when the caller's cancel flag is set; never shown to the user."""
