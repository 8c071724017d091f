"""Which bundle the current code runs: a context variable set by every load.

The same functions as the existing tool's ``llmhq_releaseops.telemetry``.
The variable follows ``contextvars`` rules: each thread and each asyncio
task sees its own, and a task started after a load inherits it.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator, Optional

from .models import BundleMetadata

__all__ = [
    "get_bundle_metadata",
    "set_bundle_metadata",
    "clear_bundle_metadata",
    "bundle_context",
]

_METADATA: "contextvars.ContextVar[Optional[BundleMetadata]]" = contextvars.ContextVar(
    "releaseops_bundle_metadata", default=None
)


def get_bundle_metadata() -> Optional[BundleMetadata]:
    """The metadata of the bundle last loaded in this context, or None."""
    return _METADATA.get()


def set_bundle_metadata(metadata: Optional[BundleMetadata]) -> None:
    """Makes ``metadata`` the current bundle of this context (quietly: a
    repeated load of the same bundle is not news)."""
    if _METADATA.get() is not metadata:
        _METADATA.set(metadata)


def clear_bundle_metadata() -> None:
    """No bundle is current in this context any more."""
    _METADATA.set(None)


@contextmanager
def bundle_context(metadata: BundleMetadata) -> Iterator[BundleMetadata]:
    """``metadata`` is the current bundle inside the block, and what was
    current before is again after it."""
    token = _METADATA.set(metadata)
    try:
        yield metadata
    finally:
        _METADATA.reset(token)
