"""Telemetry in Python's OpenTelemetry SDK (in-memory exporter)."""

from __future__ import annotations

import asyncio
import os

import pytest

import releaseops
from releaseops import RuntimeLoader

if not os.environ.get("CI"):  # in CI a missing SDK is a failure, not a skip
    pytest.importorskip("opentelemetry.sdk")
from opentelemetry import baggage, trace  # noqa: E402

from releaseops.otel import model_call  # noqa: E402


def finished(spans, name):
    return [s for s in spans.get_finished_spans() if s.name == name]


def test_load_tags_the_span_and_the_baggage(repo, spans):
    spans.clear()
    loader = RuntimeLoader(repo.path)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("agent-run"):
        _, metadata = loader.load_bundle("support-agent@prod")
        assert baggage.get_baggage("releaseops.bundle_version") == "1.0.0"
        assert baggage.get_baggage("releaseops.environment") == "prod"
        with tracer.start_as_current_span("llm-call"):
            pass
        with tracer.start_as_current_span("tool-call"):
            pass
    (run,) = finished(spans, "agent-run")
    assert dict(run.attributes) == metadata.to_flat_dict()
    # The existing tool left child spans bare; the processor tags them.
    for child in ("llm-call", "tool-call"):
        (s,) = finished(spans, child)
        assert s.attributes["releaseops.bundle_id"] == "support-agent"
        assert s.attributes["releaseops.bundle_hash"] == metadata.bundle_hash
        assert None not in dict(s.attributes).values()


def test_context_manager_scopes_the_baggage(repo, spans):
    loader = RuntimeLoader(repo.path)
    with loader.load_bundle_context("support-agent@dev"):
        assert baggage.get_baggage("releaseops.bundle_version") == "1.1.0"
    assert baggage.get_baggage("releaseops.bundle_version") is None


def test_async_loads_tag_the_callers_span(repo, spans):
    spans.clear()
    loader = releaseops.AsyncRuntimeLoader(repo.path)
    tracer = trace.get_tracer("test")

    async def main():
        with tracer.start_as_current_span("async-run"):
            await loader.load_bundle("support-agent@staging")
            with tracer.start_as_current_span("async-child"):
                await asyncio.sleep(0)

    asyncio.run(main())
    (run,) = finished(spans, "async-run")
    assert run.attributes["releaseops.environment"] == "staging"
    (child,) = finished(spans, "async-child")
    assert child.attributes["releaseops.environment"] == "staging"


def test_spans_from_baggage_alone(repo, spans):
    """A span under propagated baggage but no local load gets the identity."""
    from opentelemetry import context

    spans.clear()
    ctx = baggage.set_baggage("releaseops.bundle_id", "upstream-agent")
    ctx = baggage.set_baggage("releaseops.bundle_version", "2.0.0", ctx)
    token = context.attach(ctx)
    try:
        with trace.get_tracer("test").start_as_current_span("downstream"):
            pass
    finally:
        context.detach(token)
    (s,) = finished(spans, "downstream")
    assert s.attributes["releaseops.bundle_id"] == "upstream-agent"
    assert s.attributes["releaseops.bundle_version"] == "2.0.0"


def test_model_call_span(repo, spans):
    spans.clear()
    bundle, metadata = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    with model_call(bundle) as call:
        call.record(input_tokens=120, output_tokens=40, finish_reasons=["stop"], response_model="claude-sonnet-4-5-20250929")
    (s,) = finished(spans, "chat claude-sonnet-4-5")
    assert s.kind == trace.SpanKind.CLIENT
    a = s.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert a["gen_ai.request.temperature"] == 0.7
    assert a["gen_ai.request.max_tokens"] == 4096
    assert a["gen_ai.usage.input_tokens"] == 120
    assert a["gen_ai.usage.output_tokens"] == 40
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["releaseops.bundle_version"] == "1.0.0"

    with pytest.raises(TimeoutError):
        with model_call(metadata, operation="text_completion"):
            raise TimeoutError("the provider did not answer")
    (e,) = finished(spans, "text_completion claude-sonnet-4-5")
    assert e.attributes["error.type"] == "TimeoutError"
    assert e.status.status_code == trace.StatusCode.ERROR
    # The current bundle is the default.
    with model_call():
        pass
    assert len(finished(spans, "chat claude-sonnet-4-5")) == 2


def test_without_opentelemetry_nothing_is_needed(repo, tmp_path):
    """In an interpreter where opentelemetry cannot be imported, loading works."""
    import subprocess
    import sys

    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "opentelemetry.py").write_text("raise ImportError('opentelemetry is not installed')\n")
    code = (
        "import releaseops\n"
        f"b, m = releaseops.RuntimeLoader({str(repo.path)!r}).load_bundle('support-agent@prod')\n"
        "assert releaseops.get_bundle_metadata() is m\n"
        "print(b.version)\n"
    )
    env = {"PYTHONPATH": str(blocker)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1.0.0"


def test_child_spans_get_the_identity_and_keep_their_own(repo, spans):
    spans.clear()
    loader = RuntimeLoader(repo.path)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("run"):
        loader.load_bundle("support-agent@prod")
        with tracer.start_as_current_span("db-query", attributes={"releaseops.environment": "mine"}):
            pass
        dev, _ = loader.load_bundle("support-agent@dev", inject_telemetry=False)
        with model_call(dev):
            pass
    (db,) = finished(spans, "db-query")
    assert db.attributes["releaseops.bundle_id"] == "support-agent"
    assert db.attributes["releaseops.environment"] == "mine", "the processor never overwrites"
    assert not any(k.startswith("gen_ai.") for k in db.attributes), "only model calls carry gen_ai.*"
    (call,) = finished(spans, "chat claude-sonnet-4-5")
    assert call.attributes["releaseops.environment"] == "dev"
    assert call.attributes["releaseops.bundle_version"] == "1.1.0"
    assert call.attributes["gen_ai.request.temperature"] == 0.2


def test_baggage_never_mixes_two_bundles(repo, spans):
    loader = RuntimeLoader(repo.path)
    loader.load_bundle("support-agent@prod")
    assert baggage.get_baggage("releaseops.environment") == "prod"
    loader.load_bundle("support-agent==1.1.0")
    assert baggage.get_baggage("releaseops.bundle_version") == "1.1.0"
    assert baggage.get_baggage("releaseops.environment") is None


def test_a_span_is_retagged_after_a_context_block(repo, spans):
    spans.clear()
    loader = RuntimeLoader(repo.path)
    with trace.get_tracer("test").start_as_current_span("retag"):
        loader.load_bundle("support-agent@prod")
        with loader.load_bundle_context("support-agent@dev"):
            pass
        loader.load_bundle("support-agent@prod")
    (s,) = finished(spans, "retag")
    assert s.attributes["releaseops.environment"] == "prod"


def test_a_load_describes_its_span_after_a_promotion(repo, spans):
    """The context still names the version loaded at startup; the request's
    span must carry the one its load returned."""
    spans.clear()
    loader = RuntimeLoader(repo.path, revalidate=0)
    loader.load_bundle("support-agent@staging")  # at startup, outside any span
    repo.promote("1.1.0", "staging")
    with trace.get_tracer("test").start_as_current_span("request"):
        bundle, _ = loader.load_bundle("support-agent@staging")
    assert bundle.version == "1.1.0"
    (s,) = finished(spans, "request")
    assert s.attributes["releaseops.bundle_version"] == "1.1.0"
    assert s.attributes["releaseops.bundle_hash"] == bundle.bundle_hash
    assert s.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"


def test_with_the_api_alone(repo, tmp_path):
    """opentelemetry-api without the SDK (the [otel] extra): loads set
    baggage, and the helpers work as no-ops where there is no SDK."""
    import subprocess
    import sys

    shadow = tmp_path / "shadow" / "opentelemetry" / "sdk"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the SDK is not installed')\n")
    code = (
        "import releaseops, releaseops.otel as o\n"
        "from opentelemetry import baggage\n"
        f"b, m = releaseops.RuntimeLoader({str(repo.path)!r}).load_bundle('support-agent@prod')\n"
        "assert baggage.get_baggage('releaseops.bundle_version') == '1.0.0'\n"
        "with o.model_call(b) as call:\n"
        "    call.record(input_tokens=1)\n"
        "assert o.BundleSpanProcessor.__mro__[1] is object\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"
