"""What a load returns: the bundle and its telemetry metadata.

Both are immutable and shared: the loader hands the same objects out for as
long as it serves the same bundle, so nothing a caller does to one can
change what another sees. Mappings are read-only views; a policy's ``data``
is a fresh copy on every access.
"""

from __future__ import annotations

import copy
import json
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import _native

__all__ = ["Bundle", "Prompt", "Policy", "ModelConfig", "BundleMetadata", "ManifestMetadata"]

# The identity attributes, which also travel as W3C baggage.
BUNDLE_ID = "releaseops.bundle_id"
BUNDLE_VERSION = "releaseops.bundle_version"
BUNDLE_HASH = "releaseops.bundle_hash"
ENVIRONMENT = "releaseops.environment"
BAGGAGE_KEYS = (BUNDLE_ID, BUNDLE_VERSION, BUNDLE_HASH, ENVIRONMENT)


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (it is shared by every load)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (it is shared by every load)")

    def _init(self, **fields: Any) -> None:
        for k, v in fields.items():
            object.__setattr__(self, k, v)

    # Immutable: a copy is the object itself.
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self


class ModelConfig(_Frozen):
    """The model a bundle runs: ``provider``, ``model``, ``temperature``,
    ``max_tokens`` and provider ``parameters``."""

    __slots__ = ("provider", "model", "temperature", "max_tokens", "_parameters")

    provider: str
    model: str
    temperature: float
    max_tokens: int

    def __init__(
        self,
        provider: str,
        model: str,
        temperature: float,
        max_tokens: int,
        parameters: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._init(
            provider=provider,
            model=model,
            temperature=float(temperature),
            max_tokens=int(max_tokens),
            _parameters=dict(parameters or {}),
        )

    @property
    def parameters(self) -> Dict[str, Any]:
        """Provider parameters (``top_p``, ``stop`` ...): a fresh copy."""
        return copy.deepcopy(self._parameters)

    def to_dict(self) -> Dict[str, Any]:
        """The existing tool's ``ModelConfig.to_dict()``: parameters only when set."""
        d: Dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self._parameters:
            d["parameters"] = self.parameters
        return d

    def __reduce__(self) -> Any:
        return (ModelConfig, (self.provider, self.model, self.temperature, self.max_tokens, self._parameters))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.provider, self.model, self.temperature, self.max_tokens))

    def __repr__(self) -> str:
        return (
            f"ModelConfig(provider={self.provider!r}, model={self.model!r}, "
            f"temperature={self.temperature!r}, max_tokens={self.max_tokens!r}, "
            f"parameters={self._parameters!r})"
        )


def _is_promptops(reference: str) -> bool:
    """``prompts/<id>@<version>``, not a file path."""
    name = reference[len("prompts/") :] if reference.startswith("prompts/") else ""
    return "@" in name and "/" not in name


class Prompt(_Frozen):
    """One prompt of a bundle: its text (``content``), the template inside it
    and its verified ``content_hash`` (also ``hash``)."""

    __slots__ = ("role", "reference", "content", "template", "content_hash")

    role: str
    reference: str
    content: str
    template: str
    content_hash: str

    def __init__(self, role: str, reference: str, content: str, template: str, content_hash: str) -> None:
        self._init(
            role=role,
            reference=reference,
            content=content,
            template=template,
            content_hash=content_hash,
        )

    @property
    def hash(self) -> str:
        """The prompt's ``sha256:`` content hash, verified at load."""
        return self.content_hash

    @property
    def ref(self) -> Optional[str]:
        """The promptops reference (``prompts/<id>@<version>``), or None for
        a prompt from a file (as the existing tool's ``ArtifactRef.ref``)."""
        return self.reference if _is_promptops(self.reference) else None

    @property
    def path(self) -> Optional[str]:
        """The repository path of a prompt from a file, else None."""
        return None if _is_promptops(self.reference) else self.reference

    artifact_type = "prompt"
    is_prompt = True
    is_policy = False

    @property
    def identifier(self) -> str:
        """The promptops reference or the path, whichever it has."""
        return self.reference

    def __reduce__(self) -> Any:
        return (Prompt, (self.role, self.reference, self.content, self.template, self.content_hash))

    def render(self, /, **variables: Any) -> str:
        """The template rendered with ``variables``, with the same Jinja2
        semantics as the Rust runtime (a missing variable is a
        :class:`~releaseops.RenderError`, a value that is not str, int,
        float, bool, None or a list/dict of them a
        :class:`~releaseops.RenderTypeError`)."""
        return _native.render(self.template, variables, f"prompt '{self.role}'")

    def __repr__(self) -> str:
        return f"Prompt(role={self.role!r}, reference={self.reference!r}, content_hash={self.content_hash!r})"


class Policy(_Frozen):
    """One policy of a bundle: its text (``content``), the parsed ``data`` and
    its verified ``content_hash`` (also ``hash``)."""

    __slots__ = ("role", "path", "content", "content_hash", "_data")

    role: str
    path: str
    content: str
    content_hash: str

    def __init__(self, role: str, path: str, content: str, content_hash: str, data: Any) -> None:
        self._init(role=role, path=path, content=content, content_hash=content_hash, _data=data)

    @property
    def data(self) -> Any:
        """The policy parsed (YAML or JSON): a fresh copy on every access."""
        return copy.deepcopy(self._data)

    @property
    def hash(self) -> str:
        """The policy's ``sha256:`` content hash, verified at load."""
        return self.content_hash

    @property
    def ref(self) -> None:
        """None, as the existing tool's policy ``ArtifactRef.ref`` (see ``path``)."""
        return None

    is_prompt = False
    is_policy = True

    @property
    def artifact_type(self) -> str:
        """``policy_<role>``, as the existing tool's (``policy_tools``, ``policy_safety``)."""
        return f"policy_{self.role}"

    @property
    def identifier(self) -> str:
        """The policy's repository path."""
        return self.path

    def __reduce__(self) -> Any:
        return (Policy, (self.role, self.path, self.content, self.content_hash, self._data))

    def __repr__(self) -> str:
        return f"Policy(role={self.role!r}, path={self.path!r}, content_hash={self.content_hash!r})"


class Bundle(_Frozen):
    """A loaded, verified bundle: identity, ``model_config``, ``prompts``
    (role -> :class:`Prompt`) and ``policies`` (role -> :class:`Policy`)."""

    __slots__ = (
        "id",
        "version",
        "bundle_hash",
        "environment",
        "description",
        "created_at",
        "created_by",
        "model_config",
        "prompts",
        "policies",
    )

    id: str
    version: str
    bundle_hash: str
    environment: Optional[str]
    description: str
    created_at: str
    created_by: str
    model_config: Optional[ModelConfig]
    prompts: Mapping[str, Prompt]
    policies: Mapping[str, Policy]

    def __init__(self, **fields: Any) -> None:
        self._init(**fields)

    schema_version = 1

    @property
    def metadata(self) -> "ManifestMetadata":
        """The manifest's metadata (``id``, ``version``, ``description``,
        ``created_at``, ``created_by``), as the existing tool's ``bundle.metadata``."""
        return ManifestMetadata(self.id, self.version, self.description, self.created_at, self.created_by)

    @property
    def all_artifacts(self) -> List[Any]:
        """Every prompt, then every policy."""
        return [*self.prompts.values(), *self.policies.values()]

    def to_dict(self) -> Dict[str, Any]:
        """Identity, model config and every artifact's origin and hash."""
        return {
            "id": self.id,
            "version": self.version,
            "bundle_hash": self.bundle_hash,
            "environment": self.environment,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "model_config": self.model_config.to_dict() if self.model_config else None,
            "prompts": {r: {"reference": p.reference, "content_hash": p.content_hash} for r, p in self.prompts.items()},
            "policies": {r: {"path": p.path, "content_hash": p.content_hash} for r, p in self.policies.items()},
        }

    def __reduce__(self) -> Any:
        fields = {k: getattr(self, k) for k in Bundle.__slots__}
        fields["prompts"] = dict(self.prompts)
        fields["policies"] = dict(self.policies)
        return (_bundle, (fields,))

    def render(self, role: str, /, **variables: Any) -> str:
        """The prompt of ``role`` rendered (see :meth:`Prompt.render`)."""
        try:
            prompt = self.prompts[role]
        except KeyError:
            from .errors import RenderError

            raise RenderError(
                f"{self.id}=={self.version} has no prompt '{role}' (its prompts: {', '.join(self.prompts) or 'none'})"
            ) from None
        return prompt.render(**variables)

    def __repr__(self) -> str:
        env = f", environment={self.environment!r}" if self.environment else ""
        return f"Bundle(id={self.id!r}, version={self.version!r}, bundle_hash={self.bundle_hash!r}{env})"


def _bundle(fields: Dict[str, Any]) -> "Bundle":
    fields = dict(fields)
    fields["prompts"] = MappingProxyType(dict(fields["prompts"]))
    fields["policies"] = MappingProxyType(dict(fields["policies"]))
    return Bundle(**fields)


class ManifestMetadata(_Frozen):
    """A bundle manifest's metadata."""

    __slots__ = ("id", "version", "description", "created_at", "created_by")

    def __init__(self, id: str, version: str, description: str, created_at: str, created_by: str) -> None:
        self._init(id=id, version=version, description=description, created_at=created_at, created_by=created_by)

    def __reduce__(self) -> Any:
        return (ManifestMetadata, (self.id, self.version, self.description, self.created_at, self.created_by))

    def __repr__(self) -> str:
        return f"ManifestMetadata(id={self.id!r}, version={self.version!r}, created_by={self.created_by!r})"


class BundleMetadata(_Frozen):
    """Which bundle is running, as telemetry carries it.

    ``to_flat_dict()`` gives the span attributes, with the names the Rust
    runtime uses (``releaseops.bundle_id``, ``releaseops.prompt.<role>``,
    ``gen_ai.request.model`` ...); no value is ever None.
    """

    __slots__ = (
        "bundle_id",
        "bundle_version",
        "bundle_hash",
        "environment",
        "_flat",
        "_identity",
        "_baggage",
        "_prompt_refs",
        "_policy_refs",
        "_model",
    )

    bundle_id: str
    bundle_version: str
    bundle_hash: str
    environment: Optional[str]

    def __init__(
        self,
        bundle_id: str,
        bundle_version: str,
        bundle_hash: str,
        environment: Optional[str],
        attributes: Mapping[str, Any],
        prompt_refs: Optional[Mapping[str, str]] = None,
        policy_refs: Optional[Mapping[str, str]] = None,
        model_config: Optional[Mapping[str, Any]] = None,
    ) -> None:
        flat = {k: v for k, v in attributes.items() if v is not None}
        self._init(
            bundle_id=bundle_id,
            bundle_version=bundle_version,
            bundle_hash=bundle_hash,
            environment=environment,
            _flat=MappingProxyType(flat),
            _identity=MappingProxyType({k: v for k, v in flat.items() if k.startswith("releaseops.")}),
            _baggage=tuple((k, str(flat[k])) for k in BAGGAGE_KEYS if k in flat),
            _prompt_refs=dict(prompt_refs or {}),
            _policy_refs=dict(policy_refs or {}),
            # Shallow: what the loaders pass is theirs alone, and the
            # property hands out deep copies.
            _model=dict(model_config) if model_config else None,
        )

    @property
    def prompt_refs(self) -> Dict[str, str]:
        """Role -> where each prompt came from."""
        return dict(self._prompt_refs)

    @property
    def policy_refs(self) -> Dict[str, str]:
        """Role -> each policy's path (the existing tool had None here)."""
        return dict(self._policy_refs)

    @property
    def model_config(self) -> Optional[Dict[str, Any]]:
        """The model config as a dict (a fresh copy), or None."""
        return copy.deepcopy(self._model)

    def to_flat_dict(self) -> Dict[str, Any]:
        """The span attributes (a fresh dict; no None values)."""
        return dict(self._flat)

    def baggage(self) -> Dict[str, str]:
        """The attributes that travel as W3C baggage: the bundle's identity."""
        return dict(self._baggage)

    def to_dict(self) -> Dict[str, Any]:
        """The existing tool's ``TelemetryContext.to_dict()``."""
        return {
            "bundle_id": self.bundle_id,
            "bundle_version": self.bundle_version,
            "bundle_hash": self.bundle_hash,
            "environment": self.environment,
            "prompt_refs": self.prompt_refs,
            "policy_refs": self.policy_refs,
            "model_config": self.model_config,
        }

    @classmethod
    def from_flat_dict(cls, flat: Mapping[str, Any]) -> "BundleMetadata":
        """Parses the flat form back (span attributes, baggage)."""
        model = flat.get("releaseops.model_config")
        return cls(
            bundle_id=str(flat.get(BUNDLE_ID, "")),
            bundle_version=str(flat.get(BUNDLE_VERSION, "")),
            bundle_hash=str(flat.get(BUNDLE_HASH, "")),
            environment=flat.get(ENVIRONMENT),
            attributes=flat,
            prompt_refs={
                k[len("releaseops.prompt.") :]: v
                for k, v in flat.items()
                if k.startswith("releaseops.prompt.") and k != "releaseops.prompt.version"
            },
            policy_refs={k[len("releaseops.policy.") :]: v for k, v in flat.items() if k.startswith("releaseops.policy.")},
            model_config=json.loads(model) if isinstance(model, str) else None,
        )

    def __reduce__(self) -> Any:
        return (
            BundleMetadata,
            (
                self.bundle_id,
                self.bundle_version,
                self.bundle_hash,
                self.environment,
                dict(self._flat),
                self._prompt_refs,
                self._policy_refs,
                self._model,
            ),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BundleMetadata) and self._flat == other._flat

    def __hash__(self) -> int:
        return hash((self.bundle_id, self.bundle_version, self.bundle_hash, self.environment))

    def __repr__(self) -> str:
        where = f"@{self.environment}" if self.environment else ""
        return f"BundleMetadata({self.bundle_id}=={self.bundle_version}{where}, {self.bundle_hash})"


def from_json(data: Mapping[str, Any]) -> Tuple[Bundle, BundleMetadata]:
    """``(bundle, metadata)`` from a bundle's JSON (the native loader's and
    ``GET /v1/resolve``'s shape)."""
    model = data.get("model")
    model_config = (
        ModelConfig(
            provider=model["provider"],
            model=model["model"],
            temperature=model["temperature"],
            max_tokens=model["max_tokens"],
            parameters=model.get("parameters"),
        )
        if model
        else None
    )
    prompts = {
        role: Prompt(
            role=role,
            reference=p.get("reference", ""),
            content=p["content"],
            template=p.get("template", p["content"]),
            content_hash=p.get("content_hash", ""),
        )
        for role, p in data.get("prompts", {}).items()
    }
    policies = {
        role: Policy(
            role=role,
            path=p.get("path", ""),
            content=p["content"],
            content_hash=p.get("content_hash", ""),
            data=p.get("data"),
        )
        for role, p in data.get("policies", {}).items()
    }
    bundle = Bundle(
        id=data["id"],
        version=data["version"],
        bundle_hash=data.get("bundle_hash", ""),
        environment=data.get("environment"),
        description=data.get("description", ""),
        created_at=data.get("created_at", ""),
        created_by=data.get("created_by", ""),
        model_config=model_config,
        prompts=MappingProxyType(prompts),
        policies=MappingProxyType(policies),
    )
    telemetry = data.get("telemetry") or {}
    metadata = BundleMetadata(
        bundle_id=bundle.id,
        bundle_version=bundle.version,
        bundle_hash=bundle.bundle_hash,
        environment=bundle.environment,
        attributes=telemetry.get("attributes", {}),
        prompt_refs={r: p.reference for r, p in prompts.items()},
        policy_refs={r: p.path for r, p in policies.items()},
        model_config=model,
    )
    return bundle, metadata
