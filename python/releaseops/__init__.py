"""releaseops: load exactly the agent bundle promoted to an environment.

::

    from releaseops import RuntimeLoader

    loader = RuntimeLoader()
    bundle, metadata = loader.load_bundle("support-agent@prod")
    model = bundle.model_config.model
    system = bundle.prompts["system"].render(user_name="Ann")

Bundles (prompts, policies, model config) are read from the repository's
``.releaseops/`` store (or a ``releaseops export`` directory), verified
against their SHA-256 hashes, and cached; :class:`HttpRuntimeLoader` loads
them from ``releaseops serve``. See ``releaseops.runtime``,
``releaseops.http``, ``releaseops.otel`` and ``releaseops.errors``.
"""

from ._native import __version__
from .errors import *  # noqa: F401,F403 (the exception hierarchy, listed in errors.__all__)
from .errors import __all__ as _errors
from .http import HttpRuntimeLoader
from .models import Bundle, BundleMetadata, ModelConfig, Policy, Prompt
from .runtime import AsyncRuntimeLoader, BundleContext, RuntimeLoader
from .telemetry import bundle_context, clear_bundle_metadata, get_bundle_metadata, set_bundle_metadata

__all__ = [
    "__version__",
    "RuntimeLoader",
    "AsyncRuntimeLoader",
    "HttpRuntimeLoader",
    "BundleContext",
    "Bundle",
    "BundleMetadata",
    "ModelConfig",
    "Prompt",
    "Policy",
    "get_bundle_metadata",
    "set_bundle_metadata",
    "clear_bundle_metadata",
    "bundle_context",
    *_errors,
]
