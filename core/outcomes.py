"""One vocabulary for how a query, a backend attempt or a file ended — used by the query log, the stats and
the UI alike, so "timeout" means the same thing on screen, in `almanac stats` and in the log.
"""

from __future__ import annotations

from typing import Final, Literal

# Error categories. Each is something a person can read and, for environment problems, act on.
TIMEOUT: Final = "timeout"  # a backend took longer than its time-to-first-token or total limit
CONNECTION: Final = "connection"  # a backend could not be reached
RATE_LIMIT: Final = "rate_limit"  # a server asked us to slow down (HTTP 429)
CONTEXT_OVERFLOW: Final = "context_overflow"  # the prompt did not fit the model's context
MODEL_ERROR: Final = "model_error"  # the model failed to load or run, or a server answered 5xx
BAD_OUTPUT: Final = "bad_output"  # the model answered with nothing usable
CANCELLED: Final = "cancelled"  # the user stopped it
EXTRACTION: Final = "extraction"  # a file could not be read or parsed
RETRIEVAL_EMPTY: Final = "retrieval_empty"  # nothing in the library matched at all
RETRIEVAL_WEAK: Final = "retrieval_weak"  # matches, but below the calibrated relevance threshold
DATABASE: Final = "database"  # the index was locked, full, read-only or damaged
BUG: Final = "bug"  # anything else: a defect in Almanac

# The ways a model backend can fail (core/backends.py, core/fallback.py).
BackendCategory = Literal[
    "timeout", "connection", "rate_limit", "context_overflow", "model_error", "bad_output", "cancelled"
]
BACKEND_CATEGORIES: Final[tuple[BackendCategory, ...]] = (
    TIMEOUT, CONNECTION, RATE_LIMIT, CONTEXT_OVERFLOW, MODEL_ERROR, BAD_OUTPUT, CANCELLED
)  # fmt: skip
ERROR_CATEGORIES: Final = (
    *BACKEND_CATEGORIES, EXTRACTION, RETRIEVAL_EMPTY, RETRIEVAL_WEAK, DATABASE, BUG
)  # fmt: skip

# Plain words for each category, for the stats view and `almanac stats`.
DESCRIPTIONS: Final = {
    TIMEOUT: "the model took too long",
    CONNECTION: "a model server could not be reached",
    RATE_LIMIT: "a model server asked to slow down",
    CONTEXT_OVERFLOW: "the question and sources did not fit the model",
    MODEL_ERROR: "the model failed",
    BAD_OUTPUT: "the model gave no usable answer",
    CANCELLED: "stopped by you",
    EXTRACTION: "a file could not be read",
    RETRIEVAL_EMPTY: "nothing in your files matched",
    RETRIEVAL_WEAK: "nothing in your files matched well enough",
    DATABASE: "the index could not be used",
    BUG: "an internal error",
}

# Cache outcomes of an answer.
CACHE_MISS: Final = "miss"
CACHE_EXACT: Final = "exact"
CACHE_SEMANTIC: Final = "semantic"

# Why an answer ended (`Answer.stopped`) that counts as "not in your files" for the stats.
NOT_IN_FILES_STOPS: Final = frozenset({"declined", "no context"})


def category_for_stop(stopped: str) -> str:
    """The error category an answer's `stopped` reason implies, or "" when it ended normally."""
    if stopped in ERROR_CATEGORIES:  # the fallback chain ends a failed answer with its category
        return stopped
    return {"no context": RETRIEVAL_EMPTY, "declined": RETRIEVAL_WEAK}.get(stopped, "")


def category_for_error(err: BaseException) -> str:
    """The category of an exception that ended a query."""
    from .errors import Cancelled, DatabaseError, ModelError

    if isinstance(err, Cancelled):
        return CANCELLED
    if isinstance(err, DatabaseError):
        return DATABASE
    if isinstance(err, ModelError):
        return MODEL_ERROR
    category = getattr(err, "category", "")  # core.backends.BackendError
    return category if category in ERROR_CATEGORIES else BUG
