"""Loading from ``releaseops serve``, for services without the repository.

::

    loader = HttpRuntimeLoader("http://releaseops.internal:8080", token=os.environ["RELEASEOPS_TOKEN"])
    bundle, metadata = loader.load_bundle("support-agent@prod")

- ``ID@ENV`` is revalidated at most once per ``revalidate`` seconds with a
  conditional request (``If-None-Match``: a bodyless 304 when nothing
  moved), and, with ``watch`` on, a background long poll on
  ``/v1/watch/{ref}`` picks a promotion or rollback up the moment it lands.
  ``ID==VERSION`` is immutable: fetched once.
- Every prompt and policy is checked against its content hash, and the
  answer against its ETag, before it is served.
- When the server is down, slow or failing, the last good bundle keeps being
  served and ``last_error`` says why; with nothing good yet, the load raises
  :class:`~releaseops.ServerError`. What the server answers about the
  reference itself (400, 401/403, 404) is raised as it is.
- The token is sent as ``Authorization: Bearer``; it never appears in an
  exception, a log line or a repr.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
import urllib.parse
from typing import Any, Dict, Optional, Tuple

from . import _native, errors
from .models import Bundle, BundleMetadata, from_json
from .runtime import BundleContext, _content, _inject

__all__ = ["HttpRuntimeLoader"]

_log = logging.getLogger("releaseops")

Loaded = Tuple[Bundle, BundleMetadata]


class _Entry:
    __slots__ = ("etag", "pair", "checked", "pinned")

    def __init__(self, etag: str, pair: Loaded, checked: float, pinned: bool) -> None:
        self.etag = etag
        self.pair = pair
        self.checked = checked
        self.pinned = pinned


class _Unavailable(Exception):
    """The server could not answer (connection, timeout, 5xx, a bad body)."""


def _verify(ref: str, etag: str, data: Dict[str, Any]) -> None:
    """The body is the bundle the ETag names, and every artifact its hash."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("version"), str):
        raise errors.VerifyError(f"cannot load '{ref}': the server's answer is not a bundle")
    want = f'"{data["version"]}@{data.get("bundle_hash", "")}"'
    tag = etag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    if etag and tag != want:
        raise errors.VerifyError(
            f"cannot load '{ref}': the server's ETag {etag} does not name the bundle it sent ({want})"
        )
    for section in ("prompts", "policies"):
        for role, a in (data.get(section) or {}).items():
            content = a.get("content")
            expected = a.get("content_hash", "")
            if not isinstance(content, str):
                raise errors.VerifyError(f"cannot load '{ref}': {section} '{role}' has no content")
            actual = "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()
            if actual != expected:
                raise errors.VerifyError(
                    f"cannot load '{ref}': {section} '{role}' does not match its hash "
                    f"(expected {expected}, got {actual}): not served"
                )


def _api_error(ref: str, status: int, body: bytes) -> errors.LoadError:
    try:
        e = json.loads(body)["error"]
        kind, message, hint = e.get("kind", ""), e.get("message", ""), e.get("hint", "")
    except Exception:
        kind, message, hint = "", body[:200].decode("utf-8", "replace"), ""
    text = f"cannot load '{ref}': {message}" + (f" ({hint})" if hint else "")
    if status in (401, 403):
        cls: type = errors.AccessDeniedError
    elif kind == "usage" or status == 400:
        cls = errors.InvalidReferenceError
    elif status == 404:
        cls = errors.NotFoundError
    elif kind == "verify_failed":
        cls = errors.VerifyError
    else:
        cls = errors.ServerError
    err = cls(text)
    err.reference = ref
    return err


class HttpRuntimeLoader:
    """Loads bundles from a ``releaseops serve`` at ``url``.

    Thread-safe: threads share a pool of kept-alive connections, and wait
    for the server without holding the GIL.
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
    ) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{url!r} is not a server URL: give http://HOST:PORT (or https://)")
        if u.username or u.password:
            raise ValueError("the server URL must not carry credentials: pass token= instead")
        if revalidate < 0 or timeout <= 0:
            raise ValueError("revalidate must be >= 0 and timeout > 0 (seconds)")
        self.url = urllib.parse.urlunsplit((u.scheme, u.netloc, u.path.rstrip("/"), "", ""))
        # The token lives in the native client only.
        self._client = _native.HttpClient(
            self.url, token if token is not None else os.environ.get("RELEASEOPS_TOKEN"), float(timeout)
        )
        self.auto_inject_telemetry = auto_inject_telemetry
        self._revalidate = float(revalidate)
        self._timeout = float(timeout)
        self._watch = watch
        self._cache: Dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._watchers: Dict[str, threading.Thread] = {}
        self._closed = threading.Event()
        self._last_error: Optional[str] = None

    def __repr__(self) -> str:
        return f"HttpRuntimeLoader({self.url!r})"

    # -- HTTP ---------------------------------------------------------------

    def _get(self, path: str, etag: Optional[str], timeout: Optional[float] = None) -> Tuple[int, str, bytes]:
        """(status, etag, body) of a GET (kept-alive connections, no GIL held)."""
        try:
            return self._client.get(path, etag, timeout)
        except ConnectionError as e:
            raise _Unavailable(str(e)) from None

    def _fetch(self, ref: str, old: Optional[_Entry], watch: Optional[int] = None) -> _Entry:
        quoted = urllib.parse.quote(ref, safe="@=")
        path = f"/v1/watch/{quoted}?timeout={watch}" if watch else f"/v1/resolve/{quoted}"
        status, etag, body = self._get(path, old.etag if old else None, watch + self._timeout if watch else None)
        now = time.monotonic()
        if status == 304 and old is not None:
            old.checked = now
            return old
        if status == 200:
            try:
                data = json.loads(body)
            except ValueError:
                raise _Unavailable(f"{self.url} answered {ref} with a body that is not JSON") from None
            _verify(ref, etag, data)
            if old is not None and old.etag == etag:
                old.checked = now
                return old
            return _Entry(etag, from_json(data), now, "==" in ref)
        if status >= 500 or status in (408, 429):
            raise _Unavailable(f"{self.url} answered {status} for {ref}: {body[:200].decode('utf-8', 'replace')}")
        raise _api_error(ref, status, body)

    # -- loading ------------------------------------------------------------

    def _load(self, ref: str) -> Loaded:
        e = self._cache.get(ref)
        if e is not None and (e.pinned or time.monotonic() - e.checked < self._revalidate):
            return e.pair
        try:
            fresh = self._fetch(ref, e)
        except (_Unavailable, errors.VerifyError) as err:
            if e is None:
                if isinstance(err, errors.VerifyError):
                    raise
                raise self._unavailable(ref, str(err)) from None
            self._failing(f"serving the last good {e.pair[0].id}=={e.pair[0].version} for '{ref}': {err}")
            e.checked = time.monotonic()
            return e.pair
        if self._last_error is not None:
            self._last_error = None
        if fresh is not e:
            with self._lock:
                self._cache[ref] = fresh
        if self._watch and not fresh.pinned:
            self._start_watch(ref)
        return fresh.pair

    def _unavailable(self, ref: str, why: str) -> errors.ServerError:
        err = errors.ServerError(f"cannot load '{ref}': {why}; no good bundle is known yet (is `releaseops serve` running?)")
        err.reference = ref
        return err

    def _failing(self, message: str) -> None:
        if self._last_error != message:
            _log.warning("releaseops: %s", message)
        self._last_error = message

    def load_bundle(self, ref: str, inject_telemetry: Optional[bool] = None) -> Loaded:
        """``(bundle, metadata)`` for ``ref``, as :meth:`RuntimeLoader.load_bundle`."""
        pair = self._load(ref)
        if self.auto_inject_telemetry if inject_telemetry is None else inject_telemetry:
            _inject(pair[1])
        return pair

    def load_bundle_content(self, ref: str) -> Dict[str, Any]:
        return _content(self._load(ref))

    def load_bundle_context(self, ref: str) -> BundleContext:
        async def aload() -> Loaded:
            return self._load(ref)

        return BundleContext(lambda: self._load(ref), aload)

    def invalidate(self) -> None:
        """The next load of each ``ID@ENV`` revalidates at once."""
        with self._lock:
            for e in self._cache.values():
                e.checked = float("-inf")

    @property
    def last_error(self) -> Optional[str]:
        return self._last_error

    # -- watching -----------------------------------------------------------

    def _start_watch(self, ref: str) -> None:
        if ref in self._watchers or self._closed.is_set():
            return
        with self._lock:
            if ref in self._watchers:
                return
            t = threading.Thread(target=self._watch_loop, args=(ref,), name=f"releaseops-watch {ref}", daemon=True)
            self._watchers[ref] = t
        t.start()

    def _watch_loop(self, ref: str, hold: int = 30) -> None:
        backoff = 0.5
        while not self._closed.is_set():
            old = self._cache.get(ref)
            try:
                fresh = self._fetch(ref, old, watch=hold)
            except Exception:
                # Down, failing, or an answer that does not verify: the loads
                # keep the last good bundle; try again, backing off.
                if self._closed.wait(backoff * (0.5 + random.random())):
                    return
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            if fresh is not old and not self._closed.is_set():
                with self._lock:
                    self._cache[ref] = fresh

    def close(self) -> None:
        """Ends the watches (a watch waiting on the server ends when its
        request does, within its hold time)."""
        self._closed.set()

    def __enter__(self) -> "HttpRuntimeLoader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
