"""The README's Python SDK example runs as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from support import Repo, git

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Python SDK") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Py Test")
    git(path, "config", "user.email", "py@example.test")
    r = Repo(path)
    r.write("prompts/system.md", "Hello {{ user_name }}.\n")
    r.write("policies/tools.yaml", "tools:\n- name: issue_refund\n")
    r.commit("agent")
    r.run("init")
    r.run(
        "bundle", "create", "support-agent", "-v", "1.2.0", "-a", "system=file:prompts/system.md",
        "--policy", "tools=policies/tools.yaml", "-m", "claude-sonnet-4-5", "--provider", "anthropic",
    )  # fmt: skip
    for env in ("dev", "staging", "prod"):
        r.promote("1.2.0", env)
    monkeypatch.chdir(path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["model"] == "claude-sonnet-4-5"
    assert scope["system"] == "Hello Ann."
    assert scope["refunds"] == {"tools": [{"name": "issue_refund"}]}
    asyncio.run(scope["handle"]())
    # The same with the pinned reference the example's comment names.
    assert "support-agent==1.2.0" in code
