"""RuntimeLoader against stores written by the real binary."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import threading

import pytest

import releaseops
from releaseops import RuntimeLoader
from releaseops.runtime import RuntimeLoader as CompatRuntimeLoader

from support import PROMPT, PROMPT_V2, SAFETY, TOOLS


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_the_existing_tools_api(repo):
    assert CompatRuntimeLoader is RuntimeLoader
    loader = RuntimeLoader(repo.path)
    bundle, metadata = loader.load_bundle("support-agent@prod")
    assert (bundle.id, bundle.version, bundle.environment) == ("support-agent", "1.0.0", "prod")
    assert bundle.bundle_hash.startswith("sha256:") and len(bundle.bundle_hash) == 71
    mc = bundle.model_config
    assert (mc.provider, mc.model, mc.temperature, mc.max_tokens) == ("anthropic", "claude-sonnet-4-5", 0.7, 4096)
    assert mc.parameters == {"top_p": 0.9}
    system = bundle.prompts["system"]
    assert system.content == PROMPT
    assert system.hash == system.content_hash == sha(PROMPT)
    assert system.reference == "prompts/system.md"
    assert bundle.policies["tools"].content == TOOLS
    assert bundle.policies["tools"].data == {"tools": [{"name": "issue_refund", "allowed": True, "max_amount": 100}]}
    assert bundle.policies["safety"].hash == sha(SAFETY)
    assert (metadata.bundle_id, metadata.bundle_version, metadata.bundle_hash, metadata.environment) == (
        "support-agent",
        "1.0.0",
        bundle.bundle_hash,
        "prod",
    )


def test_flat_dict_has_the_rust_names_and_no_none(repo):
    _, metadata = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    flat = metadata.to_flat_dict()
    assert None not in flat.values()
    assert flat["releaseops.bundle_id"] == "support-agent"
    assert flat["releaseops.bundle_version"] == "1.0.0"
    assert flat["releaseops.environment"] == "prod"
    assert flat["releaseops.prompt.system"] == "prompts/system.md"
    # The existing tool set None here; we set the policy's path.
    assert flat["releaseops.policy.tools"] == "policies/tools.yaml"
    assert flat["releaseops.policy.safety"] == "policies/safety.yaml"
    assert flat["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert flat["gen_ai.provider.name"] == "anthropic"
    assert flat["releaseops.model.temperature"] == 0.7
    # The existing tool's single attribute: json.dumps(sort_keys=True).
    assert flat["releaseops.model_config"] == (
        '{"max_tokens": 4096, "model": "claude-sonnet-4-5", "parameters": {"top_p": 0.9}, '
        '"provider": "anthropic", "temperature": 0.7}'
    )
    # What the Rust side prints for the same bundle.
    import json

    rust = json.loads(repo.run("telemetry", "show", "support-agent@prod", "--json").stdout)
    assert rust["attributes"] == flat
    back = releaseops.BundleMetadata.from_flat_dict(flat)
    assert back == metadata and back.policy_refs == metadata.policy_refs


def test_render_has_the_rust_semantics(repo):
    bundle, _ = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    p = bundle.prompts["system"]
    assert p.render(company="Acme", limit=100) == "You are the support agent of Acme.\nRefund up to 100 dollars."
    assert bundle.render("system", company="Acme", limit=1.5).endswith("Refund up to 1.5 dollars.")
    with pytest.raises(releaseops.RenderError, match=r"missing variable limit .*pass limit=\.\.\.") as e:
        p.render(company="Acme")
    assert isinstance(e.value, ValueError)
    with pytest.raises(releaseops.RenderTypeError, match=r"variable 'company' is a set") as t:
        p.render(company={"a"}, limit=1)
    assert isinstance(t.value, TypeError)
    with pytest.raises(releaseops.RenderTypeError, match=r"'company.bad\[1\]' is a bytes"):
        p.render(company={"bad": [1, b"x"]}, limit=1)
    with pytest.raises(releaseops.RenderTypeError, match="finite"):
        p.render(company="A", limit=float("nan"))
    with pytest.raises(releaseops.RenderError, match="has no prompt 'user'"):
        bundle.render("user")


def test_pinned_versions_and_the_same_objects_while_unchanged(repo):
    loader = RuntimeLoader(repo.path)
    b1, m1 = loader.load_bundle("support-agent==1.1.0")
    assert (b1.version, b1.environment, m1.environment) == ("1.1.0", None, None)
    assert b1.prompts["system"].content == PROMPT_V2
    assert "releaseops.environment" not in m1.to_flat_dict()
    assert loader.load_bundle("support-agent==1.1.0")[0] is b1
    prod = loader.load_bundle("support-agent@prod")
    assert loader.load_bundle("support-agent@prod") is prod
    assert loader.load_bundle("support-agent@dev")[0].version == "1.1.0"


def test_shared_objects_cannot_be_changed(repo):
    bundle, metadata = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    with pytest.raises(AttributeError):
        bundle.version = "6.6.6"
    with pytest.raises(TypeError):
        bundle.prompts["system"] = None
    data = bundle.policies["tools"].data
    data["tools"][0]["allowed"] = False
    assert bundle.policies["tools"].data["tools"][0]["allowed"] is True
    flat = metadata.to_flat_dict()
    flat.clear()
    assert metadata.to_flat_dict()


def test_promotion_and_rollback_are_picked_up(repo):
    loader = RuntimeLoader(repo.path, revalidate=0)
    assert loader.load_bundle("support-agent@staging")[0].version == "1.0.0"
    repo.promote("1.1.0", "staging")
    assert loader.load_bundle("support-agent@staging")[0].version == "1.1.0"
    repo.run("rollback", "staging", "support-agent")
    assert loader.load_bundle("support-agent@staging")[0].version == "1.0.0"
    # With the default interval, invalidate() makes the next load look.
    slow = RuntimeLoader(repo.path)
    assert slow.load_bundle("support-agent@staging")[0].version == "1.0.0"
    repo.promote("1.1.0", "staging")
    slow.invalidate()
    assert slow.load_bundle("support-agent@staging")[0].version == "1.1.0"


def test_load_bundle_content(repo):
    c = RuntimeLoader(repo.path).load_bundle_content("support-agent@prod")
    assert set(c) == {"bundle", "metadata", "prompts", "policies", "model"}
    assert c["prompts"] == {"system": PROMPT}
    # Parsed, as the existing tool meant to (it returned an error string).
    assert c["policies"] == {
        "tools": {"tools": [{"name": "issue_refund", "allowed": True, "max_amount": 100}]},
        "safety": {"constraints": [{"type": "refund_limit", "max_amount": 100}]},
    }
    assert c["bundle"].policies["safety"].content == SAFETY
    assert c["model"] == {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "temperature": 0.7,
        "max_tokens": 4096,
        "parameters": {"top_p": 0.9},
    }
    # A load like load_bundle, as in the existing tool: the bundle is current.
    assert releaseops.get_bundle_metadata() is c["metadata"]


def test_context_manager_sync_and_async(repo):
    loader = RuntimeLoader(repo.path)
    with loader.load_bundle_context("support-agent@staging") as bundle:
        assert bundle.version == "1.0.0"
        assert releaseops.get_bundle_metadata().environment == "staging"
        with loader.load_bundle_context("support-agent@dev"):
            assert releaseops.get_bundle_metadata().environment == "dev"
        assert releaseops.get_bundle_metadata().environment == "staging"
    assert releaseops.get_bundle_metadata() is None

    async def main():
        async with loader.load_bundle_context("support-agent@dev") as b:
            assert b.version == "1.1.0"
            assert releaseops.get_bundle_metadata().environment == "dev"
        assert releaseops.get_bundle_metadata() is None

    asyncio.run(main())


def test_inject_telemetry_switches(repo):
    loader = RuntimeLoader(repo.path, auto_inject_telemetry=False)
    loader.load_bundle("support-agent@prod")
    assert releaseops.get_bundle_metadata() is None
    _, m = loader.load_bundle("support-agent@prod", inject_telemetry=True)
    assert releaseops.get_bundle_metadata() is m
    RuntimeLoader(repo.path).load_bundle("support-agent@dev", inject_telemetry=False)
    assert releaseops.get_bundle_metadata() is m


def test_an_export_directory_without_git(repo, tmp_path):
    out = tmp_path / "export"
    repo.run("export", "support-agent@prod", "--out", str(out))
    shutil.rmtree(repo.path)  # nothing of the repository is needed
    bundle, metadata = RuntimeLoader(out).load_bundle("support-agent@prod")
    assert bundle.prompts["system"].content == PROMPT
    assert metadata.environment == "prod"


def test_the_releaseops_dir_itself(repo):
    assert RuntimeLoader(repo.path / ".releaseops").load_bundle("support-agent@prod")[0].version == "1.0.0"


def test_cwd_is_the_default(repo, monkeypatch):
    monkeypatch.chdir(repo.path)
    assert RuntimeLoader().load_bundle("support-agent@prod")[0].version == "1.0.0"


def test_eight_threads_share_one_cache(repo):
    loader = RuntimeLoader(repo.path, revalidate=0)
    refs = ["support-agent@prod", "support-agent@dev", "support-agent==1.0.0", "support-agent==1.1.0"]
    seen: dict = {}
    errors: list = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(300):
                for ref in refs:
                    b, m = loader.load_bundle(ref)
                    assert m.bundle_version == b.version
                    seen.setdefault(ref, set()).add(b.bundle_hash)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a loading thread hung"
    assert not errors, errors
    assert {r: len(h) for r, h in seen.items()} == {r: 1 for r in refs}
    # Pinned versions are the same objects in every thread.
    assert loader.load_bundle("support-agent==1.0.0") is loader.load_bundle("support-agent==1.0.0")


def test_the_last_good_bundle_is_served_when_the_store_breaks(repo):
    loader = RuntimeLoader(repo.path, revalidate=0)
    good, _ = loader.load_bundle("support-agent@prod")
    env = repo.path / ".releaseops" / "environments" / "prod.yaml"
    text = env.read_text()
    env.write_text("environment: prod\nbundle_mappings: [broken\n")
    again, _ = loader.load_bundle("support-agent@prod")
    assert again is good
    assert "prod.yaml" in loader.last_error
    env.write_text(text)
    loader.load_bundle("support-agent@prod")
    assert loader.last_error is None
    # A fresh loader has nothing good to fall back on: it raises.
    env.write_text("environment: prod\nbundle_mappings: [broken\n")
    with pytest.raises(releaseops.CorruptStoreError, match="prod.yaml"):
        RuntimeLoader(repo.path).load_bundle("support-agent@prod")


def test_one_context_manager_entered_inside_itself(repo):
    loader = RuntimeLoader(repo.path)
    ctx = loader.load_bundle_context("support-agent@dev")
    with ctx:
        with ctx:
            assert releaseops.get_bundle_metadata().environment == "dev"
        assert releaseops.get_bundle_metadata().environment == "dev"
    assert releaseops.get_bundle_metadata() is None


def test_copy_pickle_and_the_existing_tools_attributes(repo):
    import copy
    import pickle

    bundle, metadata = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    assert copy.copy(bundle) is bundle and copy.deepcopy(bundle) is bundle
    back = pickle.loads(pickle.dumps((bundle, metadata)))
    assert back[0].to_dict() == bundle.to_dict() and back[1] == metadata
    assert back[0].prompts["system"].render(company="A", limit=1) == bundle.prompts["system"].render(company="A", limit=1)
    assert back[0].policies["tools"].data == bundle.policies["tools"].data
    assert (bundle.metadata.id, bundle.metadata.version, bundle.schema_version) == ("support-agent", "1.0.0", 1)
    assert [a.role for a in bundle.all_artifacts] == ["system", "tools", "safety"]
    system = bundle.prompts["system"]
    assert (system.ref, system.path) == (None, "prompts/system.md")
    assert (bundle.policies["tools"].ref, bundle.policies["tools"].path) == (None, "policies/tools.yaml")
    # A variable may be called role (or self).
    assert "Acme" in bundle.render("system", role="admin", company="Acme", limit=1)


def test_durations_out_of_range(repo):
    for bad in (1e20, float("inf"), float("nan"), -1):
        with pytest.raises(ValueError, match="revalidate"):
            RuntimeLoader(repo.path, revalidate=bad)
        with pytest.raises(ValueError):
            releaseops.HttpRuntimeLoader("http://127.0.0.1:1", timeout=bad)


def test_a_shared_structure_cannot_hang_the_render(repo):
    bundle, _ = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    x: list = ["leaf"]
    for _ in range(40):
        x = [x, x]
    with pytest.raises(releaseops.RenderTypeError, match="more than 1000000 values"):
        bundle.prompts["system"].render(company=x, limit=1)


def test_a_broken_store_is_logged_once(repo, caplog):
    import logging

    loader = RuntimeLoader(repo.path, revalidate=0)
    loader.load_bundle("support-agent@prod")
    env = repo.path / ".releaseops" / "environments" / "prod.yaml"
    text = env.read_text()
    env.write_text("environment: prod\nbundle_mappings: [broken\n")
    with caplog.at_level(logging.INFO, logger="releaseops"):
        for _ in range(5):
            loader.load_bundle("support-agent@prod")
            # Another reference loading fine does not hide prod's failure.
            loader.load_bundle("support-agent@dev")
            assert "prod.yaml" in loader.last_error
        env.write_text(text)
        loader.load_bundle("support-agent@prod")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "serving the last good bundle" in warnings[0].getMessage()
    assert "prod.yaml" in warnings[0].getMessage()
    assert any("reads again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_one_context_manager_shared_by_threads_and_tasks(repo):
    loader = RuntimeLoader(repo.path)
    ctx = loader.load_bundle_context("support-agent@dev")
    entered = threading.Barrier(2)
    seen: list = []

    def worker():
        with ctx:
            entered.wait(timeout=30)
            seen.append(releaseops.get_bundle_metadata().environment)
            entered.wait(timeout=30)
        seen.append(releaseops.get_bundle_metadata())

    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert seen.count("dev") == 2 and seen.count(None) == 2

    async def task(delay):
        async with ctx:
            await asyncio.sleep(delay)
            assert releaseops.get_bundle_metadata().environment == "dev"
        return releaseops.get_bundle_metadata()

    async def main():
        return await asyncio.gather(task(0.02), task(0.0))

    assert asyncio.run(main()) == [None, None]
