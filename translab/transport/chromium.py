"""Headless Chromium as a WebRTC peer: the system's Debian ``chromium`` driven by playwright.

playwright (the Python package) talks to the browser over a pipe (no DevTools port is opened) and is
pointed at the system binary with ``executable_path``; nothing is downloaded at install or run time
(``playwright install`` is never run). The browser gets a fresh profile directory, a fake microphone
that plays a WAV file once (``--use-file-for-fake-audio-capture=FILE%noloop``), no permission
prompt, autoplay without a user gesture (so ``<audio>`` plays the remote track and NetEq runs) and
the flags the machine's closed network needs (no background networking, QUIC, sync, component
updates).

Nothing is left behind: :meth:`ChromiumPeer.close` (run by ``async with`` on every exit, failed,
cancelled and interrupted ones included) closes the browser and playwright's driver, then kills any
process of theirs still alive (found as descendants of the driver, recorded while the browser ran)
and removes the profile directory; the browser's sockets (its ICE ports) go with its processes.

Example::

    async with ChromiumPeer(fake_audio=wav_path) as browser:
        page = await browser.open("http://127.0.0.1:8080/?autostart=1&record=1")
        ...
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "chromium_path", "unavailable_reason", "ChromiumPeer", "descendants"]

#: flags every run gets (besides playwright's own headless/automation flags)
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)


def chromium_path() -> str | None:
    """The Chromium binary: ``$TRANSLAB_CHROMIUM`` or the Debian package's ``/usr/bin/chromium``;
    None when neither is executable."""
    for p in (os.environ.get("TRANSLAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def unavailable_reason() -> str | None:
    """Why a browser peer cannot run here (None when it can)."""
    if chromium_path() is None:
        return "no Chromium (install the Debian package: apt-get install chromium; ./lab setup does)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    return None


def descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (children, grandchildren...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("latin-1")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot; with the pid it names one process for
    good, so a recycled pid is never mistaken for ours), or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().decode("latin-1").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _driver_pids(before: set[int]) -> set[int]:
    """playwright's driver processes this process started since ``before`` was listed (playwright
    does not publish the pid; its command line names the playwright package)."""
    return {pid for pid in descendants(os.getpid()) - before
            if "playwright" in _cmdline(pid) and pid not in before}


class ChromiumPeer:
    """One headless Chromium with a fresh profile (see the module docstring).

    ``fake_audio``: a WAV file the fake microphone plays once (copied into the profile directory,
    so it goes with it); ``extra_args``: more command-line flags. After ``__aenter__``:
    ``profile_dir``, ``launch_ms`` (ms to start the browser), ``pids`` (its processes seen so far: pid
    -> start time).
    """

    def __init__(self, fake_audio: str | os.PathLike[str] | None = None, *, extra_args: tuple[str, ...] = (),
                 launch_timeout_s: float = 30.0) -> None:
        self.fake_audio = Path(fake_audio) if fake_audio is not None else None
        self.extra_args = tuple(extra_args)
        self.launch_timeout_s = launch_timeout_s
        self.profile_dir: Path | None = None
        self.launch_ms: float = float("nan")
        self.pids: dict[int, int] = {}
        self._pw: Any = None
        self._ctx: Any = None
        self._drivers: set[int] = set()

    async def __aenter__(self) -> "ChromiumPeer":
        try:
            await self.launch()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def launch(self) -> None:
        """Start playwright's driver and the browser."""
        from translab.errors import TranslabError

        reason = unavailable_reason()
        if reason:
            raise TranslabError(f"browser peer: {reason}")
        from playwright.async_api import async_playwright

        t = time.perf_counter()
        self.profile_dir = Path(tempfile.mkdtemp(prefix="translab-chromium-"))
        args = list(CHROMIUM_FLAGS)
        if self.fake_audio is not None:
            wav = self.profile_dir / "microphone.wav"
            shutil.copyfile(self.fake_audio, wav)
            args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        args += self.extra_args
        before = descendants(os.getpid())
        self._pw = await async_playwright().start()
        self._drivers = _driver_pids(before)
        self._ctx = await self._pw.chromium.launch_persistent_context(
            str(self.profile_dir / "profile"), executable_path=chromium_path(), headless=True, args=args,
            # playwright mutes audio by default; a muted browser is not what a caller runs
            ignore_default_args=["--mute-audio"], timeout=self.launch_timeout_s * 1000)
        self.launch_ms = (time.perf_counter() - t) * 1e3
        self.note_pids()

    def note_pids(self) -> None:
        """Record the browser's processes (call now and then: it starts renderers as it goes)."""
        for driver in self._drivers:
            for pid in {driver} | descendants(driver):
                start = _start_time(pid)
                if start is not None:
                    self.pids.setdefault(pid, start)

    def alive(self) -> list[int]:
        """Our processes still running (by pid and start time)."""
        return [pid for pid, start in self.pids.items() if _start_time(pid) == start]

    async def open(self, url: str) -> Any:
        """A page at ``url`` (the persistent context's first tab)."""
        assert self._ctx is not None, "launch() first"
        page = self._ctx.pages[0] if self._ctx.pages else await self._ctx.new_page()
        await page.goto(url)
        self.note_pids()
        return page

    async def close(self) -> None:
        """Close the browser and the driver, kill what survived, remove the profile (idempotent)."""
        self.note_pids()
        ctx, self._ctx = self._ctx, None
        pw, self._pw = self._pw, None
        if ctx is not None:
            try:
                await asyncio.wait_for(ctx.close(), 10)
            except BaseException:  # noqa: BLE001 - a dead browser must not stop the clean-up
                pass
        if pw is not None:
            try:
                await asyncio.wait_for(pw.stop(), 10)
            except BaseException:  # noqa: BLE001
                pass
        for pid, start in sorted(self.pids.items()):
            if _start_time(pid) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for _ in range(50):
            if not self.alive():
                break
            await asyncio.sleep(0.02)
        if self.profile_dir is not None:
            shutil.rmtree(self.profile_dir, ignore_errors=True)
