"""Sign-up throughput of the subscriber app on loopback, as a ratio to GET /healthz.

uvicorn serves the app (one worker, its own process) on a temporary SQLite instance; an
asyncio httpx client keeps a few requests in flight. Each sign-up is a new address, so it does
the full work: validate, write the subscriber and the rate-limit row, render and write the
confirmation mail to the outbox. Every phase is bounded by a request count and a time cap.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 8
SERVER = """
import sys, uvicorn
from pipeline.config import load_config
from subscribers.web import create_app
uvicorn.run(create_app(load_config(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", workers=1)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _phase(
    client: httpx.AsyncClient, make: Any, total: int, cap_seconds: float
) -> dict[str, float]:
    """Send up to ``total`` requests (``make(i)`` builds one), CONCURRENCY at a time."""
    done = 0
    failed = 0
    counter = iter(range(total))
    deadline = time.perf_counter() + cap_seconds

    async def worker() -> None:
        nonlocal done, failed
        for i in counter:
            if time.perf_counter() > deadline:
                return
            response = await make(client, i)
            done += 1
            failed += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {"requests": done, "failed": failed, "seconds": round(elapsed, 3),
            "per_second": round(done / elapsed, 1)}  # fmt: skip


async def _drive(base: str, quick: bool) -> dict[str, Any]:
    n_signup, n_health = (150, 600) if quick else (1500, 6000)
    cap = 5.0 if quick else 15.0

    async def health(client: httpx.AsyncClient, _i: int) -> httpx.Response:
        return await client.get("/healthz")

    async def signup(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.post(
            "/",
            data={
                "email": f"load-{i}@example.org",
                "topics": ["llm-inference", "diffusion-models"],
                "interests": "efficient inference for small language models",
                "timezone": "Europe/Berlin",
                "send_hour": "7",
                "frequency": "daily",
            },
        )

    async def page(client: httpx.AsyncClient, _i: int) -> httpx.Response:
        return await client.get("/")

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await _phase(client, health, 50, cap)  # warm up connections and caches
        reference = await _phase(client, health, n_health, cap)
        form = await _phase(client, page, n_signup, cap)
        signups = await _phase(client, signup, n_signup, cap)
    return {"healthz": reference, "signup_page": form, "signup_post": signups}


@contextmanager
def served_app() -> Iterator[tuple[str, Path, Callable[[], None]]]:
    """The app under uvicorn (one worker, its own process) on a temporary SQLite instance
    with no sign-up limit: its base URL, its folder and a function that stops it (so its
    mails are all written) before the ``with`` ends."""
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        folder = Path(tmp)
        config = folder / "config.toml"
        config.write_text(
            '[storage]\nurl = "sqlite:///var/paperboy.db"\n'
            '[web]\nsecret_key = "benchmark-secret-0123456789"\n'
            "signups_per_ip_per_hour = 1000000\n",
            encoding="utf-8",
        )
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(config), str(port)], env=env, cwd=tmp
        )
        base = f"http://127.0.0.1:{port}"

        def stop() -> None:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)

        try:
            _wait_until_up(base, server)
            yield base, folder, stop
        finally:
            stop()


def run(quick: bool = False) -> dict[str, Any]:
    """Sign-ups per second against uvicorn (one worker), and as a share of /healthz's rate."""
    with served_app() as (base, folder, stop):
        figures = asyncio.run(_drive(base, quick))
        stop()
        mails = len(list((folder / "var" / "outbox").glob("*.eml")))
    ref = figures["healthz"]["per_second"]
    return {
        "concurrency": CONCURRENCY,
        "workers": 1,
        "healthz_per_second": ref,
        "signup_page_per_second": figures["signup_page"]["per_second"],
        "signups_per_second": figures["signup_post"]["per_second"],
        "signups_vs_healthz": round(figures["signup_post"]["per_second"] / ref, 3),
        "signup_page_vs_healthz": round(figures["signup_page"]["per_second"] / ref, 3),
        "confirmation_mails_written": mails,
        "failed_requests": sum(int(p["failed"]) for p in figures.values()),
        "phases": figures,
    }


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with {server.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the app did not come up within 30 s")


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
