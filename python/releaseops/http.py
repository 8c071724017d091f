"""Loading from ``releaseops serve``, for services without the repository.

::

    loader = HttpRuntimeLoader("https://releaseops.internal", token=os.environ["RELEASEOPS_TOKEN"])
    bundle, metadata = loader.load_bundle("support-agent@prod")

- ``ID@ENV`` is revalidated at most once per ``revalidate`` seconds with a
  conditional request (``If-None-Match``: a bodyless 304 when nothing
  moved); while one thread revalidates, the others keep the bundle they
  have. With ``watch`` on, a background long poll on ``/v1/watch/{ref}``
  picks a promotion or rollback up the moment it lands. ``ID==VERSION`` is
  immutable: fetched once.
- The answer is verified before anything of it is served, by the same Rust
  code as a local load: every prompt's and policy's text against its
  content hash, the bundle hash recomputed from those and the model config,
  the identity against the reference asked for; the template inside a
  prompt, a policy's parsed data and the telemetry attributes are derived
  from the checked text, never taken from the answer.
- When the server is down, slow, failing or answers something that does not
  verify, the last good bundle keeps being served and ``last_error`` says
  why; with nothing good yet, the load raises (:class:`~releaseops.ServerError`,
  :class:`~releaseops.VerifyError`). What the server says about the
  reference itself (400, 401/403, 404) is raised as it is.
- The token is sent as ``Authorization: Bearer``, and only over HTTPS or to
  a loopback address unless ``allow_insecure=True``. It is held by the
  native client, and blanked out of anything the server says before that
  reaches an exception or a log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import math
import os
import random
import threading
import time
import urllib.parse
import weakref
from typing import Any, Dict, Optional, Set, Tuple

from . import _native, errors
from .models import Bundle, BundleMetadata, from_json
from .runtime import BundleContext, _content, _inject

__all__ = ["HttpRuntimeLoader"]

_log = logging.getLogger("releaseops")

Loaded = Tuple[Bundle, BundleMetadata]

# How long a watch holds its request, and the least time between two.
_HOLD = 30
_WATCH_GAP = 0.05


class _Entry:
    __slots__ = ("tag", "pair", "checked", "pinned", "seq", "refreshing")

    def __init__(self, tag: str, pair: Loaded, checked: float, pinned: bool, seq: int) -> None:
        self.tag = tag  # '"VERSION@BUNDLE_HASH"', of the verified bundle
        self.pair = pair
        self.checked = checked
        self.pinned = pinned
        self.seq = seq  # when its answer arrived (answers are ordered by it)
        self.refreshing = False


class _Unavailable(Exception):
    """The server gave no usable answer (connection, timeout, 5xx, 429)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error_text(text: str) -> Tuple[str, str, str]:
    """(kind, message, hint) of the server's error body."""
    try:
        e = json.loads(text)["error"]
        return str(e.get("kind", "")), str(e.get("message", "")), str(e.get("hint", ""))
    except Exception:
        return "", text.strip()[:300], ""


def _not_found_class(message: str) -> type:
    if message.startswith("environment '"):
        return errors.EnvironmentNotFoundError
    if " is not deployed in " in message:
        return errors.BundleNotDeployedError
    if " does not exist" in message and "==" in message:
        return errors.VersionNotFoundError
    return errors.NotFoundError


class HttpRuntimeLoader:
    """Loads bundles from a ``releaseops serve`` at ``url``.

    Thread-safe: threads share a pool of kept-alive connections, and wait
    for the server without holding the GIL. ``stats`` counts the requests
    and how they were answered.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        auto_inject_telemetry: bool = True,
        *,
        revalidate: float = 1.0,
        timeout: float = 5.0,
        watch: bool = True,
        allow_insecure: bool = False,
    ) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{url!r} is not a server URL: give https://HOST[:PORT] (or http:// to a loopback address)")
        if u.username or u.password:
            raise ValueError("the server URL must not carry credentials: pass token= instead")
        if not (math.isfinite(revalidate) and revalidate >= 0) or not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("revalidate must be a finite number of seconds >= 0 and timeout one > 0")
        if token is None:
            token = os.environ.get("RELEASEOPS_TOKEN")
        if token and u.scheme == "http" and not _is_loopback(u.hostname) and not allow_insecure:
            raise ValueError(
                f"refusing to send the token in cleartext to {u.hostname}: use https://, "
                "or pass allow_insecure=True on a network you trust"
            )
        self.url = urllib.parse.urlunsplit((u.scheme, u.netloc, u.path.rstrip("/"), "", ""))
        # The token lives in the native client only.
        self._client = _native.HttpClient(self.url, token, float(timeout))
        self.auto_inject_telemetry = auto_inject_telemetry
        self._revalidate = float(revalidate)
        self._timeout = float(timeout)
        self._watch = watch
        self._cache: Dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._errors: Dict[str, str] = {}
        self._paths: Dict[str, Tuple[str, str]] = {}
        self._first: Dict[str, threading.Lock] = {}
        self._watching: Set[str] = set()
        # References whose watch the server (or a proxy) refuses while it
        # resolves them: revalidation alone serves them.
        self._unwatchable: Set[str] = set()
        self._closed = threading.Event()
        weakref.finalize(self, self._closed.set)
        # requests sent; answered 304; 200 with the bundle already held;
        # 200 with a new one; no usable answer. (Approximate under threads.)
        self.stats: Dict[str, int] = {"requests": 0, "not_modified": 0, "unchanged": 0, "updated": 0, "failed": 0}

    def __repr__(self) -> str:
        return f"HttpRuntimeLoader({self.url!r})"

    # -- one request --------------------------------------------------------

    def _fetch(self, ref: str, old: Optional[_Entry], pinned: bool, watch: bool = False) -> _Entry:
        """The entry for what the server answers now (``old`` itself when
        nothing changed). Raises _Unavailable when it gives no usable
        answer, the LoadError it stands for otherwise. Answers are ordered
        by when they arrive: a long poll answered after a revalidation
        reflects the later state."""
        paths = self._paths.get(ref)
        if paths is None:
            quoted = urllib.parse.quote(ref, safe="@=")
            paths = self._paths[ref] = (f"/v1/resolve/{quoted}", f"/v1/watch/{quoted}?timeout={_HOLD}")
        path = paths[1] if watch else paths[0]
        self.stats["requests"] += 1
        try:
            status, _etag, data, text = self._client.fetch(
                ref, path, old.tag if old else None, _HOLD + self._timeout if watch else None
            )
        except ConnectionError as e:
            self.stats["failed"] += 1
            raise _Unavailable(str(e)) from None
        except errors.LoadError:
            self.stats["failed"] += 1
            raise
        seq = next(self._seq)
        now = time.monotonic()
        if status == 304:
            if old is None:
                raise _Unavailable(f"{self.url} answered 304 Not Modified to a request that named no version")
            self.stats["not_modified"] += 1
            self._confirm(ref, old, now, seq)
            return old
        if status == 200 and data is not None:
            tag = f'"{data["version"]}@{data["bundle_hash"]}"'
            if old is not None and old.tag == tag:
                self.stats["unchanged"] += 1
                self._confirm(ref, old, now, seq)
                return old
            self.stats["updated"] += 1
            return _Entry(tag, from_json(data), now, pinned, seq)
        self.stats["failed"] += 1
        kind, message, hint = _error_text(text)
        detail = message + (f" ({hint})" if hint else "")
        if status in (401, 403):
            cls: type = errors.AccessDeniedError
        elif status == 400 or kind == "usage":
            cls = errors.InvalidReferenceError
        elif status == 404:
            cls = _not_found_class(message)
        elif kind == "verify_failed":
            cls = errors.VerifyError
        else:
            raise _Unavailable(f"{self.url} answered {status} for {ref}" + (f": {detail}" if detail else ""))
        err = cls(f"cannot load '{ref}': the server answered {status}: {detail or 'no reason given'}")
        err.reference = ref
        raise err

    def _confirm(self, ref: str, old: _Entry, now: float, seq: int) -> None:
        """The server says ``old`` is still current: fresh again, if it is
        still what the cache holds (never put back over a newer answer)."""
        with self._lock:
            if self._cache.get(ref) is old and seq > old.seq:
                old.checked = now
                old.seq = seq

    def _commit(self, ref: str, fresh: _Entry) -> _Entry:
        """Stores ``fresh`` unless a later answer got there first."""
        with self._lock:
            current = self._cache.get(ref)
            if current is not None and current is not fresh and current.seq > fresh.seq:
                return current
            self._cache[ref] = fresh
            return fresh

    # -- errors -------------------------------------------------------------

    def _failing(self, ref: str, message: str) -> None:
        with self._lock:
            known = self._errors.pop(ref, None)
            self._errors[ref] = message
        if known != message:
            _log.warning("releaseops: %s", message)

    def _succeeded(self, ref: str) -> None:
        if ref in self._errors:
            with self._lock:
                self._errors.pop(ref, None)
            _log.info("releaseops: %s loads from %s again", ref, self.url)

    @property
    def last_error(self) -> Optional[str]:
        """Why the loader is serving a last good bundle (the latest such
        reason, while any reference is served that way), else None."""
        with self._lock:
            return next(reversed(list(self._errors.values())), None)

    # -- loading ------------------------------------------------------------

    def _load(self, ref: str) -> Loaded:
        e = self._cache.get(ref)
        if e is not None and (e.pinned or e.refreshing or time.monotonic() - e.checked < self._revalidate):
            return e.pair
        if e is None:
            return self._first_load(ref)
        if e is not None:
            with self._lock:  # one thread revalidates; the others keep what they have
                if e.refreshing:
                    return e.pair
                e.refreshing = True
        return self._refresh(ref, e)

    def _first_load(self, ref: str) -> Loaded:
        """The first load of ``ref``: threads asking at once share one request."""
        with self._lock:
            gate = self._first.setdefault(ref, threading.Lock())
        with gate:
            e = self._cache.get(ref)
            if e is not None:  # another thread's request got it
                return e.pair
            try:
                return self._refresh(ref, None)
            finally:
                with self._lock:
                    self._first.pop(ref, None)

    def _refresh(self, ref: str, e: Optional[_Entry]) -> Loaded:
        try:
            if e is not None:
                pinned = e.pinned
            else:  # a malformed ref fails here, not at the server
                pinned = _native.parse_reference(ref)[1] is None
            fresh = self._fetch(ref, e, pinned)
        except (_Unavailable, errors.VerifyError, errors.CorruptStoreError, errors.InvalidBundleError) as err:
            if e is None:
                if isinstance(err, _Unavailable):
                    raise self._unavailable(ref, str(err)) from None
                raise
            bundle = e.pair[0]
            self._failing(ref, f"serving the last good {bundle.id}=={bundle.version} for '{ref}': {err}")
            e.checked = time.monotonic()
            return e.pair
        except errors.LoadError:
            # The server says the reference itself is wrong now (no longer
            # deployed, no access): nothing cached stands for it any more.
            with self._lock:
                self._cache.pop(ref, None)
                self._errors.pop(ref, None)
            raise
        finally:
            if e is not None:
                e.refreshing = False
        self._succeeded(ref)
        fresh = self._commit(ref, fresh)
        if self._watch and not fresh.pinned and ref not in self._unwatchable:
            self._start_watch(ref)
        return fresh.pair

    def _unavailable(self, ref: str, why: str) -> errors.ServerError:
        err = errors.ServerError(f"cannot load '{ref}': {why}; no good bundle is known yet (is `releaseops serve` running?)")
        err.reference = ref
        return err

    def load_bundle(self, ref: str, inject_telemetry: Optional[bool] = None) -> Loaded:
        """``(bundle, metadata)`` for ``ref``, as :meth:`RuntimeLoader.load_bundle`."""
        pair = self._load(ref)
        if self.auto_inject_telemetry if inject_telemetry is None else inject_telemetry:
            _inject(pair[1])
        return pair

    def load_bundle_content(self, ref: str, inject_telemetry: Optional[bool] = None) -> Dict[str, Any]:
        """``{bundle, metadata, prompts, policies, model}``, as :meth:`RuntimeLoader.load_bundle_content`."""
        return _content(self.load_bundle(ref, inject_telemetry))

    def load_bundle_context(self, ref: str) -> BundleContext:
        """``with`` / ``async with``; the async form waits for the server on
        an executor thread, never on the event loop."""

        async def aload() -> Loaded:
            e = self._cache.get(ref)
            if e is not None and (e.pinned or time.monotonic() - e.checked < self._revalidate):
                return e.pair
            return await asyncio.get_running_loop().run_in_executor(None, self._load, ref)

        return BundleContext(lambda: self._load(ref), aload)

    def invalidate(self) -> None:
        """The next load of each ``ID@ENV`` revalidates at once."""
        with self._lock:
            for e in self._cache.values():
                e.checked = float("-inf")

    # -- watching -----------------------------------------------------------

    def _start_watch(self, ref: str) -> None:
        with self._lock:
            if ref in self._watching or self._closed.is_set():
                return
            self._watching.add(ref)
        t = threading.Thread(
            target=_watch_main,
            args=(weakref.ref(self), ref, self._closed),
            name=f"releaseops-watch {ref}",
            daemon=True,
        )
        t.start()

    def _watch_once(self, ref: str) -> str:
        """One long poll: "ok", "retry" (no usable answer) or "stop"."""
        old = self._cache.get(ref)
        if old is None:
            return "stop"
        try:
            fresh = self._fetch(ref, old, False, watch=True)
        except (_Unavailable, errors.VerifyError, errors.CorruptStoreError, errors.InvalidBundleError) as err:
            # The loads revalidate on their own; a failing watch is no news.
            _log.debug("releaseops: the watch on %s failed: %s", ref, err)
            return "retry"
        except errors.LoadError:
            # The watch refused: is the reference gone, or only the watch
            # (a proxy that does not route it)? A load tells.
            self._unwatchable.add(ref)
            try:
                self._refresh(ref, old)
            except Exception:
                pass  # it is gone: the cache no longer holds it, a load raises
            return "stop"
        self._succeeded(ref)
        if fresh is not old:
            self._commit(ref, fresh)
        return "ok"

    def close(self) -> None:
        """Ends the watches (one waiting on the server ends when its request
        does, within its hold time)."""
        self._closed.set()

    def __enter__(self) -> "HttpRuntimeLoader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _watch_main(owner: "weakref.ref[HttpRuntimeLoader]", ref: str, closed: threading.Event) -> None:
    """A watch's thread. It holds its loader only during a request, so a
    loader nobody uses any more is collected and its watches end."""
    backoff = 0.5
    while not closed.is_set():
        loader = owner()
        if loader is None:
            return
        try:
            outcome = loader._watch_once(ref)
        except Exception:  # never let a watch die of an unexpected answer
            outcome = "retry"
        if outcome == "stop":
            with loader._lock:
                loader._watching.discard(ref)
            return
        del loader
        if outcome == "retry":
            if closed.wait(backoff * (0.5 + random.random())):
                return
            backoff = min(backoff * 2, 30.0)
        else:
            backoff = 0.5
            if closed.wait(_WATCH_GAP):
                return
