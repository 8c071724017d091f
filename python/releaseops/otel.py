"""The bundle in Python's OpenTelemetry (``pip install releaseops[otel]``).

- Loading sets the bundle's attributes on the current span (when it is
  recording) and the bundle's identity as W3C baggage, so downstream
  services and child spans know which bundle produced them.
- :class:`BundleSpanProcessor` copies them onto every span started under a
  loaded bundle (the existing tool left child spans bare)::

      provider.add_span_processor(BundleSpanProcessor())

- :func:`model_call` wraps a model call in a span named and attributed by
  the GenAI semantic conventions::

      with model_call(metadata) as call:
          reply = client.messages.create(...)
          call.record(input_tokens=reply.usage.input_tokens,
                      output_tokens=reply.usage.output_tokens,
                      finish_reasons=[reply.stop_reason])
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

from opentelemetry import baggage, context, trace

from .models import BAGGAGE_KEYS, Bundle, BundleMetadata
from .telemetry import get_bundle_metadata

try:  # The processor plugs into the SDK; the API alone has no processors.
    from opentelemetry.sdk.trace import SpanProcessor as _ProcessorBase
except ImportError:  # pragma: no cover - without the SDK nothing calls it
    _ProcessorBase = object  # type: ignore[assignment,misc]

__all__ = ["BundleSpanProcessor", "ModelCall", "model_call", "inject", "attach", "detach"]


def _with_baggage(metadata: BundleMetadata, ctx: Optional[context.Context] = None) -> context.Context:
    """``ctx`` with the bundle's identity as its ``releaseops.*`` baggage
    (a key this bundle has no value for, like the environment of a pinned
    version, is removed: baggage never mixes two bundles)."""
    if ctx is None:
        ctx = context.get_current()
    mine = dict(metadata._baggage)
    for key in BAGGAGE_KEYS:
        if key in mine:
            ctx = baggage.set_baggage(key, mine[key], ctx)
        elif baggage.get_baggage(key, ctx) is not None:
            ctx = baggage.remove_baggage(key, ctx)
    return ctx


# What the last inject did in this context: (the context it attached, the
# metadata) and (the span it tagged, the metadata). A repeated load of the
# same bundle under the same span then costs two lookups.
_ATTACHED: "contextvars.ContextVar[Optional[Tuple[Any, BundleMetadata]]]" = contextvars.ContextVar(
    "releaseops_otel_attached", default=None
)
_TAGGED: "contextvars.ContextVar[Optional[Tuple[Any, BundleMetadata]]]" = contextvars.ContextVar(
    "releaseops_otel_tagged", default=None
)


def _tag(span: Any, metadata: BundleMetadata) -> None:
    """The bundle's attributes on ``span``. A load describes its span over
    the identity the span processor copied from the context at its start
    (the context may predate a promotion); once a load has tagged a span,
    a load of another bundle under it does not (a span never carries
    attributes of two loads)."""
    tagged = _TAGGED.get()
    if tagged is not None and tagged[0] is span:
        return
    span.set_attributes(metadata._flat)
    _TAGGED.set((span, metadata))


def inject(metadata: BundleMetadata) -> None:
    """Sets the bundle's attributes on the current span (if recording) and
    makes its identity the current baggage."""
    current = context.get_current()
    span = trace.get_current_span(current)
    if span.is_recording():
        _tag(span, metadata)
    attached = _ATTACHED.get()
    if attached is not None and attached[0] is current and attached[1] is metadata:
        return
    ctx = _with_baggage(metadata, current)
    context.attach(ctx)
    _ATTACHED.set((ctx, metadata))


def attach(metadata: BundleMetadata) -> object:
    """:func:`inject` for a block: returns the token :func:`detach` takes."""
    current = context.get_current()
    span = trace.get_current_span(current)
    if span.is_recording():
        _tag(span, metadata)
    return context.attach(_with_baggage(metadata, current))


def detach(token: object) -> None:
    """Undoes :func:`attach`."""
    context.detach(token)  # type: ignore[arg-type]


class BundleSpanProcessor(_ProcessorBase):  # type: ignore[misc,valid-type]
    """Copies the running bundle's ``releaseops.*`` attributes onto every
    span it sees start (the ``gen_ai.*`` ones stay on the spans of model
    calls, see :func:`model_call`), never over an attribute the span
    already has.

    The bundle is the one loaded in the span's context; failing that, the
    ``releaseops.*`` baggage the parent context carries (the identity an
    upstream service propagated).
    """

    def on_start(self, span: Any, parent_context: Optional[context.Context] = None) -> None:
        metadata = get_bundle_metadata()
        if metadata is not None:
            found: Mapping[str, Any] = metadata._identity
        else:
            items = baggage.get_all(parent_context)
            found = {k: items[k] for k in BAGGAGE_KEYS if k in items}
        if found:
            have = span.attributes or {}
            span.set_attributes({k: v for k, v in found.items() if k not in have})

    def on_end(self, span: Any) -> None:
        """Nothing to do when a span ends."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True


# The GenAI semantic conventions' provider names for ours.
_PROVIDERS = {"gemini": "gcp.gemini", "google": "gcp.gemini", "openai-compatible": "openai", "openai_compatible": "openai"}


class ModelCall:
    """The span of one model call: :meth:`record` what the response said."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def record(
        self,
        *,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        finish_reasons: Optional[Sequence[str]] = None,
        response_model: Optional[str] = None,
        response_id: Optional[str] = None,
    ) -> None:
        """Sets ``gen_ai.usage.*`` and ``gen_ai.response.*`` (what is given)."""
        values = {
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.finish_reasons": list(finish_reasons) if finish_reasons is not None else None,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": response_id,
        }
        self.span.set_attributes({k: v for k, v in values.items() if v is not None})


@contextmanager
def model_call(
    bundle: Union[Bundle, BundleMetadata, None] = None,
    *,
    operation: str = "chat",
    tracer: Optional[trace.Tracer] = None,
    attributes: Optional[Mapping[str, Any]] = None,
) -> Iterator[ModelCall]:
    """A CLIENT span ``"{operation} {model}"`` around a model call, with
    ``gen_ai.operation.name``, ``gen_ai.provider.name``,
    ``gen_ai.request.model`` / ``temperature`` / ``max_tokens`` and the
    bundle's attributes. An exception sets ``error.type`` and the error
    status, and propagates. ``bundle`` defaults to the current bundle."""
    if bundle is None:
        bundle = get_bundle_metadata()
    attrs: dict = {"gen_ai.operation.name": operation}
    model: Optional[str] = None
    if isinstance(bundle, Bundle):
        bundle_attrs = {
            "releaseops.bundle_id": bundle.id,
            "releaseops.bundle_version": bundle.version,
            "releaseops.bundle_hash": bundle.bundle_hash,
            "releaseops.environment": bundle.environment,
        }
        attrs.update({k: v for k, v in bundle_attrs.items() if v})
        mc = bundle.model_config
        if mc is not None:
            model = mc.model
            attrs["gen_ai.request.model"] = mc.model
            attrs["gen_ai.provider.name"] = _PROVIDERS.get(mc.provider, mc.provider)
            attrs["gen_ai.request.temperature"] = mc.temperature
            attrs["gen_ai.request.max_tokens"] = mc.max_tokens
    elif isinstance(bundle, BundleMetadata):
        attrs.update(bundle._flat)
        model = bundle._flat.get("gen_ai.request.model")
    attrs["gen_ai.operation.name"] = operation
    if attributes:
        attrs.update(attributes)
    tracer = tracer or trace.get_tracer("releaseops")
    name = f"{operation} {model}" if model else operation
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.CLIENT, attributes=attrs, record_exception=True, set_status_on_exception=True
    ) as span:
        try:
            yield ModelCall(span)
        except BaseException as e:
            span.set_attribute("error.type", type(e).__qualname__)
            raise
