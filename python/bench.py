"""The Python SDK's speed, beside the existing tool's, measured in one run.

    python python/bench.py [--old-python PATH]

Needs the package installed (`pip install ./python`) in this interpreter,
the `releaseops` binary (RELEASEOPS_BIN, else target/release or
target/debug), and for the existing tool's column a Python with
`llmhq-releaseops==0.1.0` (--old-python, default $RELEASEOPS_PYTHON).
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

# The installed package, not the source tree beside this script.
sys.path[0] = str(Path(__file__).resolve().parent / "tests")

from support import Repo, make_repo, start_server  # noqa: E402

import releaseops  # noqa: E402

REF = "support-agent@prod"


def per_call(fn: Callable[[], object], n: int, rounds: int = 7) -> float:
    """Median over `rounds` of the mean seconds per call of `n` calls."""
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t) / n)
    return statistics.median(out)


def cold(path: Path, ref: str, n: int = 300) -> float:
    """A new loader each time: manifest, objects and (for ID@ENV) the
    pointer's history read and verified, the Python objects built."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        releaseops.RuntimeLoader(path).load_bundle(ref)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def threaded(path: Path, threads: int, seconds: float = 1.5, native: bool = False) -> float:
    """Cold verified loads per second with `threads` threads loading at once
    (`native`: the Rust part alone, no Python objects made of the bundle)."""
    count = [0] * threads
    stop = threading.Event()
    start = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        start.wait()
        while not stop.is_set():
            if native:
                releaseops._native.Loader(str(path), 1.0, lambda data: None).load("support-agent==1.0.0")
            else:
                releaseops.RuntimeLoader(path).load_bundle("support-agent==1.0.0", inject_telemetry=False)
            count[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(count) / (time.perf_counter() - t0)


OLD = r"""
import json, statistics, sys, time, logging
logging.disable(logging.CRITICAL)
from llmhq_releaseops.runtime import RuntimeLoader
loader = RuntimeLoader(sys.argv[1])
loader.load_bundle(sys.argv[2])
out = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(200):
        loader.load_bundle(sys.argv[2])
    out.append((time.perf_counter() - t) / 200)
print(json.dumps({"repeated": statistics.median(out)}))
"""


def old_tool(python: Optional[str], path: Path) -> Optional[Dict[str, float]]:
    if not python:
        return None
    p = subprocess.run([python, "-c", OLD, str(path), REF], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        print(f"(the existing tool could not be measured: {p.stderr.strip()[-300:]})", file=sys.stderr)
        return None
    return json.loads(p.stdout)


def us(x: Optional[float]) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1e6:,.2f} µs" if x < 1e-3 else f"{x * 1e3:,.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-python", default=os.environ.get("RELEASEOPS_PYTHON"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="releaseops-bench-") as tmp:
        path = Path(tmp) / "repo"
        make_repo(path)
        loader = releaseops.RuntimeLoader(path)
        loader.load_bundle(REF)
        cached = per_call(lambda: loader.load_bundle(REF), 100_000)
        cached_quiet = per_call(lambda: loader.load_bundle(REF, inject_telemetry=False), 100_000)
        span_cached: Optional[float] = None
        try:
            from opentelemetry.sdk.trace import TracerProvider

            tracer = TracerProvider().get_tracer("bench")
            with tracer.start_as_current_span("agent-run"):
                span_cached = per_call(lambda: loader.load_bundle(REF), 100_000)
        except ImportError:
            pass
        cold_env = cold(path, REF)
        cold_pinned = cold(path, "support-agent==1.0.0")
        one = threaded(path, 1)
        eight = threaded(path, 8)
        one_native = threaded(path, 1, native=True)
        eight_native = threaded(path, 8, native=True)

        server = start_server(Repo(path), Path(tmp))
        try:
            http = releaseops.HttpRuntimeLoader(server.url, token=server.token, revalidate=0, watch=False)
            http.load_bundle(REF)
            revalidate = per_call(lambda: http.load_bundle(REF), 2_000)
            http.close()
            samples = []
            for _ in range(300):
                t = time.perf_counter()
                fresh = releaseops.HttpRuntimeLoader(server.url, token=server.token, watch=False)
                fresh.load_bundle(REF)
                samples.append(time.perf_counter() - t)
            http_cold = statistics.median(samples)
        finally:
            server.stop()
        old = old_tool(args.old_python, path)

    repeated_old = old["repeated"] if old else None
    rows = [
        ("cached `load_bundle` (telemetry on, no span)", us(cached), us(repeated_old), "< 2 µs"),
        ("cached `load_bundle`, `inject_telemetry=False`", us(cached_quiet), us(repeated_old), ""),
        ("cached `load_bundle` inside a recording SDK span", us(span_cached), "", ""),
        ("cold `ID@ENV` load, verified (new loader)", us(cold_env), us(repeated_old), "< 1 ms"),
        ("cold `ID==VERSION` load, verified (new loader)", us(cold_pinned), "no pinned refs", "< 1 ms"),
        (
            "cold verified loads/s, 1 thread -> 8 threads",
            f"{one:,.0f} -> {eight:,.0f} ({eight / one:.2f}x on {os.cpu_count()} cores)",
            "",
            "scales",
        ),
        (
            "the same, the native part alone (no Python objects)",
            f"{one_native:,.0f} -> {eight_native:,.0f} ({eight_native / one_native:.2f}x)",
            "",
            "",
        ),
        ("`HttpRuntimeLoader` revalidation (304, loopback)", us(revalidate), "none", "< 200 µs"),
        ("`HttpRuntimeLoader` first load (200, verified; new loader)", us(http_cold), "none", ""),
    ]
    print("| Measurement (median) | releaseops | existing tool 0.1.0 | target |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if repeated_old:
        print(f"\ncached load: {repeated_old / cached:,.0f}x faster than the existing tool's (uncached) load")


if __name__ == "__main__":
    main()
