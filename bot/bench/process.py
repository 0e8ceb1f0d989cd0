"""The measured side in its own process: start a child (Handoff or the ceiling), wait until it answers, stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp


def rss_mb(pid: int) -> float:
    """VmRSS of a process, from /proc/<pid>/status (what the process itself reads as /proc/self/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line; the memory scenario needs Linux's procfs.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This environment without any HANDOFF_* of the caller's (they would configure the child behind the bench's
    back), plus `settings`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}, **settings}


@dataclass
class Child:
    """A running child process, the base URL it serves, and the file its output goes to."""

    process: asyncio.subprocess.Process
    url: str
    log: Path
    what: str

    @property
    def pid(self) -> int:
        return self.process.pid

    async def until_healthy(self, settled: Callable[[Mapping], bool] = lambda health: True, timeout: float = 30) -> None:
        """Poll /healthz until it answers and `settled` holds, with a deadline; show the child's log if it died."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.returncode is not None:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.what} exited with {self.process.returncode} during the benchmark:\n{tail}")
                try:
                    async with http.get(f"{self.url}/healthz") as answer:
                        if answer.status == 200 and settled(await answer.json()):
                            return
                except aiohttp.ClientError:
                    pass  # not listening yet
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.what} did not become healthy and settled within {timeout}s; see {self.log}")
                await asyncio.sleep(0.05)


@asynccontextmanager
async def child_process(what: str, argv: Sequence[str], env: Mapping[str, str], port: int, log: Path) -> AsyncIterator[Child]:
    """Start `argv` serving on 127.0.0.1:`port`, yield it once /healthz answers, and stop it (SIGTERM, then kill)."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(*argv, env=dict(env), stdout=sink, stderr=subprocess.STDOUT)
    child = Child(process, f"http://127.0.0.1:{port}", log, what)
    try:
        await child.until_healthy(timeout=60)
        yield child
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
