"""AsyncRuntimeLoader: never blocks the loop, metadata reaches the caller."""

from __future__ import annotations

import asyncio
import threading

import releaseops
from releaseops import AsyncRuntimeLoader, RuntimeLoader


def test_metadata_is_visible_to_the_awaiting_caller(repo):
    async def main():
        loader = AsyncRuntimeLoader(repo.path)
        bundle, metadata = await loader.load_bundle("support-agent@prod")
        # The existing tool returned None here (it set it in a worker thread).
        assert releaseops.get_bundle_metadata() is metadata
        assert bundle.version == "1.0.0"
        async with loader.load_bundle_context("support-agent@staging") as b2:
            assert releaseops.get_bundle_metadata().environment == "staging"
            assert b2.environment == "staging"
        assert releaseops.get_bundle_metadata() is metadata
        content = await loader.load_bundle_content("support-agent@dev")
        assert content["bundle"].version == "1.1.0"

    asyncio.run(main())


def test_tasks_keep_their_own_bundle(repo):
    loader = AsyncRuntimeLoader(repo.path)

    async def one(env: str):
        await loader.load_bundle(f"support-agent@{env}")
        await asyncio.sleep(0.01)
        return releaseops.get_bundle_metadata().environment

    async def main():
        return await asyncio.gather(*(one(e) for e in ["dev", "staging", "prod"] * 20))

    assert asyncio.run(main()) == ["dev", "staging", "prod"] * 20


def test_concurrent_loads_share_one_cache_and_one_read(repo):
    loader = AsyncRuntimeLoader(repo.path)
    loop_threads = set()
    reads = []
    native = loader.sync._native
    real_load = native.load

    class Counting:
        """Counts the reads that reach the store (the native loader is real)."""

        def __getattr__(self, name):
            return getattr(native, name)

        def load(self, ref):
            reads.append((ref, threading.get_ident()))
            return real_load(ref)

    loader.sync._native = Counting()

    async def main():
        loop_threads.add(threading.get_ident())
        refs = ["support-agent@prod", "support-agent==1.1.0", "support-agent@dev"] * 100
        results = await asyncio.gather(*(loader.load_bundle(r) for r in refs))
        return refs, results

    refs, results = asyncio.run(main())
    by_ref: dict = {}
    for ref, pair in zip(refs, results):
        by_ref.setdefault(ref, set()).add(id(pair[0]))
    assert {r: len(ids) for r, ids in by_ref.items()} == {r: 1 for r in set(refs)}
    # 300 concurrent loads of three references read the store three times,
    # in executor threads, never on the loop's thread.
    assert sorted(r for r, _ in reads) == sorted(set(refs))
    assert not {t for _, t in reads} & loop_threads


def test_errors_reach_every_waiter(repo):
    loader = AsyncRuntimeLoader(repo.path)

    async def main():
        return await asyncio.gather(*(loader.load_bundle("support-agent@qa") for _ in range(10)), return_exceptions=True)

    out = asyncio.run(main())
    assert all(isinstance(e, releaseops.EnvironmentNotFoundError) for e in out)


def test_sharing_a_sync_loaders_cache(repo):
    sync = RuntimeLoader(repo.path)
    b, _ = sync.load_bundle("support-agent==1.0.0")
    loader = AsyncRuntimeLoader(loader=sync)

    async def main():
        return await loader.load_bundle("support-agent==1.0.0")

    assert asyncio.run(main())[0] is b


def test_a_loop_that_closed_mid_load_leaves_nothing_behind(repo):
    loader = AsyncRuntimeLoader(repo.path)

    async def start_and_leave():
        asyncio.ensure_future(loader.load_bundle("support-agent==1.0.0"))
        await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start_and_leave())
    loop.close()

    async def main():
        return await asyncio.wait_for(loader.load_bundle("support-agent==1.0.0"), timeout=30)

    assert asyncio.run(main())[0].version == "1.0.0"
