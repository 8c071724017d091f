"""An agent instrumented with OpenTelemetry's Python SDK exports its spans
to `releaseops serve` over OTLP/HTTP (protobuf, gzip), with an ingest
token, and the trace store holds them under the bundle the SDK loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from releaseops import RuntimeLoader

if not os.environ.get("CI"):  # in CI a missing exporter is a failure, not a skip
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

from releaseops.otel import BundleSpanProcessor, model_call  # noqa: E402
from support import Repo, start_server  # noqa: E402


def test_an_instrumented_agent_exports_to_the_server(repo: Repo, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    out = repo.run("token", "new", "--owner", "Agent <agent@example.test>", "--role", "ingest", "--file", str(tokens), "--json")
    ingest = json.loads(out.stdout)["token"]
    server = start_server(repo, tmp_path)
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "support"}))
        provider.add_span_processor(BundleSpanProcessor())
        exporter = OTLPSpanExporter(
            endpoint=f"{server.url}/v1/traces",
            headers={"Authorization": f"Bearer {ingest}"},
            compression=Compression.Gzip,
            timeout=30,
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = provider.get_tracer("support-agent")
        loader = RuntimeLoader(repo.path)
        for i in range(20):
            with tracer.start_as_current_span("agent-run") as run:
                with loader.load_bundle_context("support-agent@prod"):
                    with model_call(tracer=tracer) as call:
                        call.record(input_tokens=100 + i, output_tokens=20, finish_reasons=["tool_calls"])
                    with tracer.start_as_current_span(
                        "execute_tool issue_refund",
                        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "issue_refund"},
                    ) as tool:
                        if i % 5 == 0:
                            tool.set_status(Status(StatusCode.ERROR, "refund service down"))
                            tool.set_attribute("error.type", "RefundServiceDown")
                run.set_attribute("app.order_count", 2)
        assert provider.force_flush(30_000)
        provider.shutdown()

        stats = json.loads(repo.run("traces", "stats", "--json").stdout)
        assert stats["spans"] == 60, stats
        assert stats["traces"] == 20, stats
        (group,) = stats["groups"]
        assert (group["bundle_id"], group["bundle_version"], group["environment"]) == ("support-agent", "1.0.0", "prod")
        assert group["errors"] == 4

        metrics = json.loads(repo.run("analytics", "metrics", "support-agent@1.0.0", "--env", "prod", "--json").stdout)["metrics"]
        assert metrics["sample_size"] == 20
        assert metrics["error_rate"] == pytest.approx(0.2)
        assert metrics["tools"]["issue_refund"]["calls"] == 20
        assert metrics["input_tokens"]["total"] == sum(100 + i for i in range(20))

        # The ingest token reads nothing of the store.
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"{server.url}/v1/environments", headers={"Authorization": f"Bearer {ingest}"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 403
    finally:
        server.stop()
