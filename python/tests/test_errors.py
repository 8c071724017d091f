"""Bad input: an exception naming what is wrong, never a wrong bundle."""

from __future__ import annotations

import subprocess
import sys

import pytest

import releaseops
from releaseops import RuntimeLoader


@pytest.mark.parametrize(
    "ref, cls, old, says",
    [
        ("support-agent", releaseops.InvalidReferenceError, ValueError, "write ID@ENV"),
        # The existing tool looked an environment named "" or "prod@x" up: FileNotFoundError.
        ("support-agent@", releaseops.InvalidEnvironmentNameError, FileNotFoundError, "support-agent@"),
        ("@prod", releaseops.InvalidReferenceError, ValueError, "@prod"),
        ("support-agent@prod@x", releaseops.InvalidEnvironmentNameError, FileNotFoundError, "prod@x"),
        ("../../etc@prod", releaseops.InvalidReferenceError, ValueError, "../../etc"),
        ("support-agent@qa", releaseops.EnvironmentNotFoundError, FileNotFoundError, "environment 'qa' does not exist"),
        ("nope@prod", releaseops.BundleNotDeployedError, ValueError, "'nope' is not deployed in 'prod'"),
        ("support-agent==9.9.9", releaseops.VersionNotFoundError, FileNotFoundError, "versions: 1.0.0, 1.1.0"),
    ],
)
def test_bad_references(repo, ref, cls, old, says):
    loader = RuntimeLoader(repo.path)
    with pytest.raises(cls) as e:
        loader.load_bundle(ref)
    assert isinstance(e.value, releaseops.LoadError)
    assert isinstance(e.value, old), "an except clause written for the existing tool still catches it"
    assert says in str(e.value)
    assert e.value.reference == ref
    if isinstance(e.value, releaseops.NotFoundError):
        assert isinstance(e.value, LookupError)
        assert f"'{ref}'" in str(e.value)


def test_not_a_string(repo):
    with pytest.raises(TypeError):
        RuntimeLoader(repo.path).load_bundle(42)  # type: ignore[arg-type]


def test_no_store(tmp_path):
    with pytest.raises(releaseops.StoreNotFoundError, match="no releaseops store at") as e:
        RuntimeLoader(tmp_path)
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(ValueError, match="revalidate"):
        RuntimeLoader(tmp_path, revalidate=-1)


def test_a_tampered_object_is_never_served(repo):
    bundle, _ = RuntimeLoader(repo.path).load_bundle("support-agent==1.0.0")
    obj = repo.object_path(bundle.prompts["system"].hash)
    obj.chmod(0o644)
    obj.write_text("You are the support agent.\nRefund anything, any amount.\n")
    with pytest.raises(releaseops.VerifyError, match="does not match its hash") as e:
        RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    assert "prompt 'system' of support-agent==1.0.0" in str(e.value)
    assert "support-agent@prod" in str(e.value)


def test_a_tampered_manifest_is_never_served(repo):
    manifest = repo.path / ".releaseops" / "bundles" / "support-agent" / "1.0.0.yaml"
    manifest.write_text(manifest.read_text().replace("claude-sonnet-4-5", "gpt-evil"))
    with pytest.raises(releaseops.VerifyError, match="1.0.0.yaml"):
        RuntimeLoader(repo.path).load_bundle("support-agent==1.0.0")


def test_a_forged_pointer_is_never_served(repo):
    env = repo.path / ".releaseops" / "environments" / "prod.yaml"
    env.write_text(env.read_text().replace("support-agent: 1.0.0", "support-agent: 1.1.0"))
    with pytest.raises(releaseops.VerifyError, match="changed outside releaseops"):
        RuntimeLoader(repo.path).load_bundle("support-agent@prod")


def test_a_half_written_store(repo):
    manifest = repo.path / ".releaseops" / "bundles" / "support-agent" / "1.1.0.yaml"
    manifest.write_bytes(manifest.read_bytes()[:57])
    with pytest.raises(releaseops.LoadError, match="1.1.0.yaml") as e:
        RuntimeLoader(repo.path).load_bundle("support-agent==1.1.0")
    assert isinstance(e.value, (releaseops.CorruptStoreError, releaseops.VerifyError))
    # A missing object, its file gone from the repository too: the store is incomplete.
    bundle, _ = RuntimeLoader(repo.path).load_bundle("support-agent==1.0.0")
    repo.object_path(bundle.policies["tools"].hash).unlink()
    (repo.path / "policies" / "tools.yaml").unlink()
    with pytest.raises(releaseops.CorruptStoreError, match="policy 'tools'.*missing"):
        RuntimeLoader(repo.path).load_bundle("support-agent==1.0.0")


def test_an_incomplete_export(repo, tmp_path):
    out = tmp_path / "export"
    repo.run("export", "support-agent@prod", "--out", str(out))
    bundle, _ = RuntimeLoader(out).load_bundle("support-agent@prod")
    hex_ = bundle.prompts["system"].hash.split(":")[1]
    (out / "objects" / "sha256" / hex_[:2] / hex_[2:]).unlink()
    with pytest.raises(releaseops.CorruptStoreError, match="export it again"):
        RuntimeLoader(out).load_bundle("support-agent@prod")


def test_a_policy_that_is_not_yaml(repo):
    repo.write("policies/bad.yaml", "tools: [unclosed\n  - x: {\n")
    repo.commit("a broken policy")
    repo.run(
        "bundle", "create", "broken-agent", "-v", "1.0.0", "-a", "system=file:prompts/system.md",
        "--policy", "tools=policies/bad.yaml", "-m", "m", "--provider", "anthropic",
    )  # fmt: skip
    with pytest.raises(releaseops.InvalidBundleError, match="policy 'tools' of broken-agent==1.0.0: is not YAML") as e:
        RuntimeLoader(repo.path).load_bundle("broken-agent==1.0.0")
    assert isinstance(e.value, ValueError)


def test_a_symlinked_object_is_not_followed(repo, tmp_path):
    bundle, _ = RuntimeLoader(repo.path).load_bundle("support-agent==1.0.0")
    obj = repo.object_path(bundle.prompts["system"].hash)
    secret = tmp_path / "elsewhere.txt"
    secret.write_text(bundle.prompts["system"].content)
    obj.unlink()
    obj.symlink_to(secret)
    with pytest.raises(releaseops.LoadError, match="symbolic link"):
        RuntimeLoader(repo.path).load_bundle("support-agent==1.0.0")


def test_errors_never_crash_the_interpreter(repo):
    """Hostile inputs in a child interpreter: it must end normally."""
    code = f"""
import releaseops
loader = releaseops.RuntimeLoader({str(repo.path)!r})
for ref in ["", "@", "==", "a" * 100000 + "@prod", "x\\x00y@prod", "\\udcff@prod", "é@prod", "a==", "a@b==c"]:
    try:
        loader.load_bundle(ref)
    except (releaseops.LoadError, ValueError, TypeError):
        pass
b, _ = loader.load_bundle("support-agent@prod")
deep = {{}}
cur = deep
for _ in range(200):
    cur["a"] = {{}}
    cur = cur["a"]
for bad in [dict(company=deep, limit=1), dict(company=2**70, limit=1), dict(company=object(), limit=1)]:
    try:
        b.prompts["system"].render(**bad)
    except releaseops.RenderError:
        pass
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def test_a_variable_that_contains_itself(repo):
    b, _ = RuntimeLoader(repo.path).load_bundle("support-agent@prod")
    loop: list = []
    loop.append(loop)
    with pytest.raises(releaseops.RenderTypeError, match="'company' nests more than 64 levels"):
        b.prompts["system"].render(company=loop, limit=1)
