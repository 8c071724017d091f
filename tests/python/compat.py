#!/usr/bin/env python3
"""Compatibility check: do the .releaseops/ files written by the Rust
`releaseops` load in the Python package llmhq-releaseops 0.1.0, with the
same values?

Usage: python compat.py REPO_ROOT      (REPO_ROOT contains .releaseops/)

Optional: set RELEASEOPS_BIN to the Rust binary to also compare what Python
reads with what `releaseops --json bundle inspect` reports.

Needs only the llmhq-releaseops package (no network). Prints one line per
check and ends with `N passed, M failed`; exits 1 if anything failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import yaml

from llmhq_releaseops.core.bundler import Bundler
from llmhq_releaseops.core.hasher import hash_bundle, hash_dict, hash_file
from llmhq_releaseops.models.bundle import CURRENT_SCHEMA_VERSION
from llmhq_releaseops.runtime.loader import RuntimeLoader
from llmhq_releaseops.storage.git_store import GitStore

PASSED = 0
FAILED = 0

MODEL_DEFAULTS = {"temperature": 0.7, "max_tokens": 4096}
KNOWN_MODEL_KEYS = {"provider", "model", "temperature", "max_tokens", "parameters"}
KNOWN_POLICY_KEYS = {"requires_eval", "requires_approval", "approval_teams", "soak_hours"}
KNOWN_ENV_KEYS = {"environment", "bundle_mappings", "promotion_policy", "metadata"}


def check(name: str, ok: bool, detail: str = "") -> bool:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS {name}")
    else:
        FAILED += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


def check_call(name: str, fn):
    """Run fn(); a raised exception is a failure (traceback on stderr)."""
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - any exception is a compat failure
        check(name, False, f"{type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return None
    check(name, True)
    return result


def info(msg: str) -> None:
    print(f"INFO {msg}")


def raw_yaml(path: Path):
    with open(path, "r", encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def expected_hash(manifest) -> str:
    """Recompute the bundle hash exactly as Bundler.verify does."""
    hashes = [ref.content_hash for ref in manifest.all_artifacts if ref.content_hash]
    model_hash = hash_dict(manifest.model_config.to_dict()) if manifest.model_config else None
    return hash_bundle(hashes, model_hash)


def check_manifest(label: str, root: Path, manifest, bundle_id: str, version: str,
                   raw: dict, rust_bin: str | None) -> None:
    """Checks shared by the RuntimeLoader and GitStore paths."""
    check(f"{label}: id == {bundle_id!r}", manifest.id == bundle_id,
          f"got {manifest.id!r} ({type(manifest.id).__name__})")
    check(f"{label}: version == {version!r}", manifest.version == version,
          f"got {manifest.version!r} ({type(manifest.version).__name__})")
    check(f"{label}: schema_version {manifest.schema_version!r} <= {CURRENT_SCHEMA_VERSION}",
          isinstance(manifest.schema_version, int)
          and manifest.schema_version <= CURRENT_SCHEMA_VERSION)

    md = manifest.metadata
    bad = [k for k in ("created_at", "created_by", "description")
           if not isinstance(getattr(md, k), str)]
    check(f"{label}: metadata fields are strings", not bad,
          ", ".join(f"{k}={getattr(md, k)!r}" for k in bad))

    exp = expected_hash(manifest)
    check(f"{label}: bundle_hash matches Python hash_bundle", manifest.bundle_hash == exp,
          f"stored {manifest.bundle_hash}, Python computes {exp}")

    errors = check_call(f"{label}: Bundler.verify runs",
                        lambda: Bundler(GitStore(str(root))).verify(bundle_id, version))
    if errors is not None:
        check(f"{label}: Bundler.verify reports no errors", not errors, "; ".join(errors))

    # Path artifacts (prompts included; Python's verify checks only policies).
    for kind, refs in (("prompt", manifest.prompts), ("policy", manifest.policies)):
        for role, ref in refs.items():
            if ref.path and ref.content_hash:
                p = root / ref.path
                if p.exists():
                    h = hash_file(p)
                    check(f"{label}: {kind} {role} ({ref.path}) content_hash == hash_file",
                          h == ref.content_hash, f"stored {ref.content_hash}, file {h}")
                else:
                    check(f"{label}: {kind} {role} ({ref.path}) exists", False, "file missing")

    # Artifact refs round-trip against the raw YAML.
    raw_art = raw.get("artifacts") or {}
    for kind, refs in (("prompts", manifest.prompts), ("policies", manifest.policies)):
        raw_refs = raw_art.get(kind) or {}
        got = {role: ref.to_dict() for role, ref in refs.items()}
        check(f"{label}: artifacts.{kind} round-trip", got == raw_refs,
              f"python {got!r} != file {raw_refs!r}")

    # model_config round-trip.
    raw_mc = raw.get("model_config")
    mc = manifest.model_config
    if raw_mc is None:
        check(f"{label}: no model_config", mc is None, f"python has {mc!r}")
    else:
        extra = sorted(set(raw_mc) - KNOWN_MODEL_KEYS)
        check(f"{label}: model_config has no keys Python drops", not extra, f"dropped: {extra}")
        want = {**MODEL_DEFAULTS, **raw_mc}
        if not want.get("parameters"):
            want.pop("parameters", None)
        for k in extra:
            want.pop(k, None)
        got = mc.to_dict() if mc else None
        check(f"{label}: model_config round-trip", got == want,
              f"python {got!r} != file {want!r}")
        if mc is not None:
            types_ok = (isinstance(mc.provider, str) and isinstance(mc.model, str)
                        and isinstance(mc.temperature, float)
                        and isinstance(mc.max_tokens, int) and not isinstance(mc.max_tokens, bool))
            check(f"{label}: model_config types (str, str, float, int)", types_ok,
                  f"{type(mc.provider).__name__}, {type(mc.model).__name__}, "
                  f"{type(mc.temperature).__name__}, {type(mc.max_tokens).__name__}")
            again = yaml.safe_load(yaml.safe_dump(mc.to_dict()))
            check(f"{label}: model_config survives Python YAML re-dump", again == mc.to_dict())

    if rust_bin:
        def rust_view():
            out = subprocess.run(
                [rust_bin, "--path", str(root), "--json", "bundle", "inspect",
                 bundle_id, "--version", version],
                capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"exit {out.returncode}: {out.stderr.strip()}")
            return json.loads(out.stdout)

        rv = check_call(f"{label}: rust bundle inspect --json", rust_view)
        if rv is not None:
            check(f"{label}: id/version/hash equal Rust's",
                  (rv["metadata"]["id"], rv["metadata"]["version"], rv.get("bundle_hash"))
                  == (manifest.id, manifest.version, manifest.bundle_hash),
                  f"rust {(rv['metadata']['id'], rv['metadata']['version'], rv.get('bundle_hash'))}")
            got = mc.to_dict() if mc else None
            rmc = rv.get("model_config")
            if rmc is not None and not rmc.get("parameters"):
                rmc = {k: v for k, v in rmc.items() if k != "parameters"}
            check(f"{label}: model_config equals Rust's", got == rmc,
                  f"python {got!r} != rust {rmc!r}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compat.py REPO_ROOT", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    rel = root / ".releaseops"
    rust_bin = os.environ.get("RELEASEOPS_BIN") or None
    if not rel.is_dir():
        check(f"{rel} exists", False)
        print(f"{PASSED} passed, {FAILED} failed")
        return 1

    store = GitStore(str(root))
    loader = RuntimeLoader(root, auto_inject_telemetry=False)

    # ── Environments, and every bundle mapped in them ─────────────────
    env_files = sorted((rel / "environments").glob("*.yaml"))
    check("at least one environment file", bool(env_files))
    for env_file in env_files:
        env = env_file.stem
        raw_env = raw_yaml(env_file)
        extra = sorted(set(raw_env) - KNOWN_ENV_KEYS)
        if extra:
            info(f"env {env}: top-level keys Python ignores: {extra}")
        pol = raw_env.get("promotion_policy")
        if isinstance(pol, dict):
            extra = sorted(set(pol) - KNOWN_POLICY_KEYS)
            if extra:
                info(f"env {env}: promotion_policy keys Python ignores: {extra}")

        cfg = check_call(f"env {env}: GitStore.load_environment",
                         lambda: store.load_environment(env))
        if cfg is None:
            continue
        check(f"env {env}: environment name == file name", cfg.environment == env,
              f"got {cfg.environment!r}")
        mappings = cfg.bundle_mappings
        if not check(f"env {env}: bundle_mappings is a map", isinstance(mappings, dict),
                     f"got {mappings!r}"):
            continue
        bad = {k: v for k, v in mappings.items()
               if not isinstance(k, str) or not isinstance(v, str)}
        check(f"env {env}: bundle_mappings ids/versions are strings", not bad,
              ", ".join(f"{k!r}: {v!r} ({type(v).__name__})" for k, v in bad.items()))
        if isinstance(pol, dict):
            pp = cfg.promotion_policy
            same = (pp is not None
                    and pp.requires_eval == pol.get("requires_eval", False)
                    and pp.requires_approval == pol.get("requires_approval", False)
                    and list(pp.approval_teams) == list(pol.get("approval_teams", []))
                    and pp.soak_hours == pol.get("soak_hours", 0))
            check(f"env {env}: promotion_policy known fields round-trip", same,
                  f"python {pp!r}")
            again = check_call(f"env {env}: EnvironmentConfig.to_dict re-dumps",
                               lambda: yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
            if again is not None:
                check(f"env {env}: re-dumped mappings unchanged",
                      again.get("bundle_mappings") == mappings)

        for bundle_id, version in mappings.items():
            ref = f"{bundle_id}@{env}"
            loaded = check_call(
                f"RuntimeLoader.load_bundle({ref!r})",
                lambda: loader.load_bundle(ref, inject_telemetry=False))
            if loaded is None:
                continue
            manifest, meta = loaded
            label = f"{ref} -> {version}"
            raw = raw_yaml(rel / "bundles" / str(bundle_id) / f"{version}.yaml")
            check_manifest(label, root, manifest, str(bundle_id), str(version), raw, rust_bin)
            tel = (meta.bundle_id, meta.bundle_version, meta.bundle_hash, meta.environment)
            want = (manifest.id, manifest.version, manifest.bundle_hash or "", env)
            check(f"{label}: telemetry context matches", tel == want, f"{tel} != {want}")
            want_mc = manifest.model_config.to_dict() if manifest.model_config else {}
            check(f"{label}: telemetry model_config matches", meta.model_config == want_mc)

    # ── Every manifest on disk, through GitStore.load_bundle ──────────
    manifests = sorted((rel / "bundles").glob("*/*.yaml"))
    for path in manifests:
        bundle_id, version = path.parent.name, path.stem
        label = f"bundle {bundle_id}/{version}.yaml"
        manifest = check_call(f"{label}: GitStore.load_bundle",
                              lambda: store.load_bundle(bundle_id, version))
        if manifest is None:
            continue
        check_manifest(label, root, manifest, bundle_id, version, raw_yaml(path), rust_bin)

    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
