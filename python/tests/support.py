"""Stores written by the real `releaseops` binary and a real `releaseops
serve`: shared by the tests and the benchmark.

The binary is $RELEASEOPS_BIN, else the workspace's target/debug (or
target/release) build.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Sequence

ROOT = Path(__file__).resolve().parents[2]

PROMPT = "You are the support agent of {{ company }}.\nRefund up to {{ limit }} dollars.\n"
PROMPT_V2 = "You are the support agent of {{ company }}.\nRefund up to {{ limit }} dollars, never more.\n"
TOOLS = "tools:\n- name: issue_refund\n  allowed: true\n  max_amount: 100\n"
SAFETY = "constraints:\n- type: refund_limit\n  max_amount: 100\n"


def binary() -> str:
    found = os.environ.get("RELEASEOPS_BIN")
    if not found:
        for profile in ("debug", "release"):
            candidate = ROOT / "target" / profile / "releaseops"
            if candidate.exists():
                found = str(candidate)
                break
    if not found:
        raise RuntimeError("no releaseops binary: build it (cargo build -p releaseops-cli) or set RELEASEOPS_BIN")
    return found


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


class Repo:
    """A git repository with a releaseops store, driven through the binary."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, RELEASEOPS_ACTOR="Py Test <py@example.test>", NO_COLOR="1")
        p = subprocess.run(
            [binary(), *args], cwd=self.path, env=env, capture_output=True, text=True, timeout=120
        )
        if check and p.returncode != 0:
            raise AssertionError(f"releaseops {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def write(self, rel: str, text: str) -> None:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def commit(self, message: str) -> None:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)

    def create(self, version: str, *extra: str, prompt: str = "prompts/system.md", temperature: str = "0.7") -> None:
        self.run(
            "bundle", "create", "support-agent", "-v", version,
            "-a", f"system={'file:' + prompt}",
            "--policy", "tools=policies/tools.yaml",
            "--policy", "safety=policies/safety.yaml",
            "-m", "claude-sonnet-4-5", "--provider", "anthropic", "-t", temperature,
            *extra,
        )  # fmt: skip

    def promote(self, version: str, env: str) -> None:
        self.run("promote", "support-agent", version, env)

    def object_path(self, content_hash: str) -> Path:
        hex_ = content_hash.split(":", 1)[1]
        return self.path / ".releaseops" / "objects" / "sha256" / hex_[:2] / hex_[2:]


def make_repo(path: Path) -> Repo:
    """support-agent 1.0.0 in dev, staging and prod; 1.1.0 in dev."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Py Test")
    git(path, "config", "user.email", "py@example.test")
    git(path, "config", "commit.gpgsign", "false")
    r = Repo(path)
    r.write("prompts/system.md", PROMPT)
    r.write("prompts/system-v2.md", PROMPT_V2)
    r.write("policies/tools.yaml", TOOLS)
    r.write("policies/safety.yaml", SAFETY)
    r.commit("prompts and policies")
    r.run("init")
    r.create("1.0.0", "--param", "top_p=0.9")
    r.create("1.1.0", prompt="prompts/system-v2.md", temperature="0.2")
    for env in ("dev", "staging", "prod"):
        r.promote("1.0.0", env)
    r.promote("1.1.0", "dev")
    return r


class Server:
    def __init__(self, repo: Repo, proc: subprocess.Popen, info: Dict, token: str) -> None:
        self.repo = repo
        self.proc = proc
        self.url = info["url"]
        self.token = token

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_server(repo: Repo, tmp: Path, extra: Sequence[str] = ()) -> Server:
    tokens = tmp / "tokens.yaml"
    out = repo.run("token", "new", "--owner", "SDK <sdk@example.test>", "--role", "viewer", "--file", str(tokens), "--json")
    token = json.loads(out.stdout)["token"]
    proc = subprocess.Popen(
        [binary(), "serve", "--addr", "127.0.0.1:0", "--json", "--tokens", str(tokens), *extra],
        cwd=repo.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, RELEASEOPS_ACTOR="Py Test <py@example.test>"),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip().startswith("{"):
            break
        if proc.poll() is not None:
            raise AssertionError(f"releaseops serve exited: {proc.stderr.read() if proc.stderr else ''}")
    return Server(repo, proc, json.loads(line), token)


