"""The seed's two snippets, unchanged except for the import line."""

from __future__ import annotations

import asyncio


def test_the_sync_snippet(repo, monkeypatch):
    monkeypatch.chdir(repo.path)
    from releaseops.runtime import RuntimeLoader

    loader = RuntimeLoader()
    bundle, metadata = loader.load_bundle("support-agent@prod")

    # Access bundle data
    model = bundle.model_config.model  # e.g., "claude-sonnet-4-5"
    temperature = bundle.model_config.temperature  # e.g., 0.7
    prompts = bundle.prompts  # Dict of role -> ArtifactRef
    policies = bundle.policies  # Dict of role -> ArtifactRef

    assert (model, temperature) == ("claude-sonnet-4-5", 0.7)
    assert set(prompts) == {"system"} and set(policies) == {"tools", "safety"}
    assert metadata.bundle_version == "1.0.0"


def test_the_async_snippet(repo, monkeypatch):
    monkeypatch.chdir(repo.path)
    from releaseops.runtime import AsyncRuntimeLoader

    async def main():
        async_loader = AsyncRuntimeLoader()
        bundle, metadata = await async_loader.load_bundle("support-agent@prod")
        return bundle, metadata

    bundle, metadata = asyncio.run(main())
    assert bundle.model_config.model == "claude-sonnet-4-5"
    assert metadata.environment == "prod"
