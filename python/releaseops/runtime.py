"""Loaders: exactly the bundle an environment runs, verified and cached.

The existing tool's API (``from llmhq_releaseops.runtime import
RuntimeLoader`` becomes ``from releaseops.runtime import RuntimeLoader``)::

    loader = RuntimeLoader()
    bundle, metadata = loader.load_bundle("support-agent@prod")
    model = bundle.model_config.model
    system = bundle.prompts["system"].render(user_name="Ann")

References are ``ID@ENV`` (what the environment runs now; checked again at
most once per ``revalidate`` seconds, so a promotion or rollback is picked
up without a restart) or ``ID==VERSION`` (that version; immutable, cached
for good). Every prompt and policy is verified against the hashes recorded
when the bundle was created: a tampered store raises
:class:`~releaseops.VerifyError`, never serves. When the store breaks
under a running loader, the last good bundle keeps being served and
``last_error`` says why.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from . import _native
from .models import Bundle, BundleMetadata, from_json
from .telemetry import _METADATA

__all__ = ["RuntimeLoader", "AsyncRuntimeLoader", "BundleContext"]

_log = logging.getLogger("releaseops")

PathLike = Union[str, "os.PathLike[str]"]
Loaded = Tuple[Bundle, BundleMetadata]

# The OpenTelemetry integration: None until the first load looks for it,
# False when opentelemetry-api is not installed.
_otel: Any = None
_otel_failed = False


def _otel_module() -> Any:
    global _otel
    if _otel is None:
        try:
            from . import otel as module
        except ImportError:
            _otel = False
        else:
            _otel = module
    return _otel


def _telemetry_failed(e: Exception) -> None:
    global _otel_failed
    if not _otel_failed:
        _otel_failed = True
        _log.warning("releaseops: setting bundle telemetry failed (the load itself succeeded): %s", e)


def _inject(metadata: BundleMetadata) -> None:
    """The bundle becomes the context's current one, on its span and baggage."""
    if _METADATA.get() is not metadata:
        _METADATA.set(metadata)
    otel = _otel if _otel is not None else _otel_module()
    if otel:
        try:
            otel.inject(metadata)
        except Exception as e:  # telemetry never fails a load
            _telemetry_failed(e)


def _content(pair: Loaded) -> Dict[str, Any]:
    bundle, metadata = pair
    return {
        "bundle": bundle,
        "metadata": metadata,
        "prompts": {role: p.content for role, p in bundle.prompts.items()},
        # Parsed, as the existing tool meant (its loader's yaml.safe_load).
        "policies": {role: p.data for role, p in bundle.policies.items()},
        "model": bundle.model_config.to_dict() if bundle.model_config else None,
    }


class BundleContext:
    """What ``load_bundle_context`` returns: ``with`` (or ``async with``) it
    to run a block under the bundle: its metadata is current (and on the
    current span and baggage) inside, and what was current before is again
    after. It yields the bundle. It may be entered again inside itself, and
    by several threads or tasks at once (each one's exit undoes its own
    entry)."""

    __slots__ = ("_load", "_aload", "_tokens", "metadata")

    def __init__(self, load: Any, aload: Any) -> None:
        self._load = load
        self._aload = aload
        # The entries not yet exited, per context (thread, task).
        self._tokens: "contextvars.ContextVar[Tuple[Tuple[Any, Any], ...]]" = contextvars.ContextVar(
            "releaseops_bundle_context", default=()
        )
        self.metadata: Optional[BundleMetadata] = None

    def _enter(self, pair: Loaded) -> Bundle:
        bundle, metadata = pair
        self.metadata = metadata
        token = _METADATA.set(metadata)
        otel_token = None
        otel = _otel if _otel is not None else _otel_module()
        if otel:
            try:
                otel_token = otel.attach(metadata)
            except Exception as e:
                _telemetry_failed(e)
        self._tokens.set(self._tokens.get() + ((token, otel_token),))
        return bundle

    def _exit(self) -> None:
        stack = self._tokens.get()
        (token, otel_token), rest = stack[-1], stack[:-1]
        self._tokens.set(rest)
        if otel_token is not None:
            try:
                _otel.detach(otel_token)
            except Exception as e:
                _telemetry_failed(e)
        _METADATA.reset(token)

    def __enter__(self) -> Bundle:
        return self._enter(self._load())

    def __exit__(self, *exc: Any) -> None:
        self._exit()

    async def __aenter__(self) -> Bundle:
        return self._enter(await self._aload())

    async def __aexit__(self, *exc: Any) -> None:
        self._exit()


async def _in_executor(native: Any, ref: str, executor: Optional[Executor] = None) -> Loaded:
    """A native load: from memory at once, else on an executor thread."""
    pair = native.load_cached(ref)
    if pair is not None:
        return pair
    return await asyncio.get_running_loop().run_in_executor(executor, native.load, ref)


class RuntimeLoader:
    """Loads bundles from ``base_dir`` (default: the current directory): a
    repository holding ``.releaseops/``, the ``.releaseops`` directory
    itself, or a directory written by ``releaseops export``.

    Thread-safe; share one per process. A cached load takes about a
    microsecond; a load that reads the store releases the GIL.
    """

    def __init__(
        self,
        base_dir: Optional[PathLike] = None,
        auto_inject_telemetry: bool = True,
        *,
        revalidate: float = 1.0,
    ) -> None:
        path = os.fspath(base_dir) if base_dir is not None else os.getcwd()
        self._native = _native.Loader(path, float(revalidate), from_json)
        self.base_dir = Path(path)
        self.auto_inject_telemetry = auto_inject_telemetry

    def load_bundle(self, ref: str, inject_telemetry: Optional[bool] = None) -> Loaded:
        """``(bundle, metadata)`` for ``ref`` (``ID@ENV`` or ``ID==VERSION``).

        With telemetry on (the loader's ``auto_inject_telemetry`` unless
        ``inject_telemetry`` says otherwise) the metadata becomes this
        context's current bundle (:func:`releaseops.get_bundle_metadata`),
        and with OpenTelemetry installed it is set on the current span and
        as baggage."""
        pair = self._native.load(ref)
        if self.auto_inject_telemetry if inject_telemetry is None else inject_telemetry:
            _inject(pair[1])
        return pair

    def load_bundle_content(self, ref: str, inject_telemetry: Optional[bool] = None) -> Dict[str, Any]:
        """``{bundle, metadata, prompts, policies, model}``: every prompt's
        text and every policy parsed, by role, and the model config as a
        dict (a load like :meth:`load_bundle`, telemetry included)."""
        return _content(self.load_bundle(ref, inject_telemetry))

    def load_bundle_context(self, ref: str) -> BundleContext:
        """A context manager (``with`` or ``async with``) running its block
        under the bundle; it yields the bundle."""

        native = self._native
        return BundleContext(lambda: native.load(ref), lambda: _in_executor(native, ref))

    def invalidate(self) -> None:
        """The next load of each ``ID@ENV`` checks the store at once."""
        self._native.invalidate()

    @property
    def last_error(self) -> Optional[str]:
        """Why the loader is serving the last good bundle, if it is."""
        return self._native.last_error

    @property
    def store_dir(self) -> Path:
        """The directory bundles are read from."""
        return Path(self._native.dir)

    def __repr__(self) -> str:
        return f"RuntimeLoader({str(self.base_dir)!r})"


class AsyncRuntimeLoader:
    """:class:`RuntimeLoader` for asyncio. A load answered from memory
    returns at once; one that reads the store runs in ``executor`` (default:
    the loop's) without blocking the event loop, and concurrent loads of the
    same reference share one read. The metadata is set in the awaiting
    task's context, so ``get_bundle_metadata()`` sees it after the await.
    ``loader`` shares a :class:`RuntimeLoader`'s cache."""

    def __init__(
        self,
        base_dir: Optional[PathLike] = None,
        auto_inject_telemetry: bool = True,
        *,
        revalidate: float = 1.0,
        executor: Optional[Executor] = None,
        loader: Optional[RuntimeLoader] = None,
    ) -> None:
        self.sync = loader if loader is not None else RuntimeLoader(base_dir, auto_inject_telemetry, revalidate=revalidate)
        self.auto_inject_telemetry = auto_inject_telemetry
        self._executor = executor
        self._inflight: Dict[Tuple[int, str], "asyncio.Future[Loaded]"] = {}

    async def _load(self, ref: str) -> Loaded:
        native = self.sync._native
        pair = native.load_cached(ref)
        if pair is not None:
            return pair
        loop = asyncio.get_running_loop()
        key = (id(loop), ref)
        fut = self._inflight.get(key)
        if fut is not None and (fut.done() or fut.get_loop() is not loop):
            # Left by a loop that closed mid-load, or one whose id was reused.
            fut = None
        if fut is None:
            fut = loop.run_in_executor(self._executor, native.load, ref)
            self._inflight[key] = fut

            def done(f: "asyncio.Future[Loaded]", key: Tuple[int, str] = key) -> None:
                if self._inflight.get(key) is f:
                    del self._inflight[key]
                if not f.cancelled():
                    f.exception()  # retrieved: no "never retrieved" warning

            fut.add_done_callback(done)
        return await asyncio.shield(fut)

    async def load_bundle(self, ref: str, inject_telemetry: Optional[bool] = None) -> Loaded:
        """``(bundle, metadata)``, as :meth:`RuntimeLoader.load_bundle`."""
        pair = await self._load(ref)
        if self.auto_inject_telemetry if inject_telemetry is None else inject_telemetry:
            _inject(pair[1])
        return pair

    async def load_bundle_content(self, ref: str, inject_telemetry: Optional[bool] = None) -> Dict[str, Any]:
        """``{bundle, metadata, prompts, policies, model}``, as :meth:`RuntimeLoader.load_bundle_content`."""
        return _content(await self.load_bundle(ref, inject_telemetry))

    def load_bundle_context(self, ref: str) -> BundleContext:
        """``async with loader.load_bundle_context(ref) as bundle: ...``"""
        return BundleContext(lambda: self.sync._native.load(ref), lambda: self._load(ref))

    def invalidate(self) -> None:
        """The next load of each ``ID@ENV`` checks the store at once."""
        self.sync.invalidate()

    @property
    def last_error(self) -> Optional[str]:
        """Why the loader is serving a last good bundle, if it is."""
        return self.sync.last_error

    def __repr__(self) -> str:
        return f"AsyncRuntimeLoader({str(self.sync.base_dir)!r})"
