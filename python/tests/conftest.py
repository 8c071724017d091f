"""Fixtures: stores written by the real `releaseops` binary, a real
`releaseops serve` on loopback (tests/support.py), and OpenTelemetry's SDK
with its in-memory exporter."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator, Optional

import pytest

from support import PROMPT, PROMPT_V2, SAFETY, TOOLS, Repo, Server, make_repo, start_server

__all__ = ["PROMPT", "PROMPT_V2", "SAFETY", "TOOLS", "Repo", "Server", "start_server"]

_TEMPLATE: Optional[Path] = None


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A fresh copy of the standard repository (built once per session)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = tmp_path_factory.mktemp("template") / "repo"
        make_repo(_TEMPLATE)
    dest = tmp_path_factory.mktemp("repo") / "repo"
    shutil.copytree(_TEMPLATE, dest, symlinks=True)
    return Repo(dest)


@pytest.fixture
def server(repo: Repo, tmp_path: Path) -> Iterator[Server]:
    s = start_server(repo, tmp_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def spans():
    """OpenTelemetry's SDK as the global tracer provider, exporting to memory
    (the provider can be set once per process)."""
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must install opentelemetry-sdk for the telemetry tests (see .ci/run)")
        pytest.skip("opentelemetry-sdk is not installed")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from releaseops.otel import BundleSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BundleSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture(autouse=True)
def _fresh_context():
    """Each test starts with no current bundle."""
    import releaseops

    releaseops.clear_bundle_metadata()
    try:
        from opentelemetry import context
    except ImportError:
        yield
        return
    # A plain load attaches the bundle's baggage to the current context for
    # good (as a load should); each test starts from an empty one.
    token = context.attach(context.Context())
    try:
        yield
    finally:
        context.detach(token)
