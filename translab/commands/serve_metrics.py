"""Prometheus metrics of the calls `translab serve` receives (``translab_serve_*``, see
translab.metrics.prometheus), on their own port with prometheus_client's server, so serve's HTTP
signalling is left alone. commands/serve.py makes one :class:`ServeExporter` with --metrics-port and
hands it every finished call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def failure_kind(reason: str) -> str:
    """A served call's failure reason (free text) as a label value."""
    if reason.startswith("no "):
        return "no_media"
    if reason.startswith("could not analyse"):
        return "analysis_failed"
    return "error"


class ServeExporter:
    """Serves ``translab_serve_*`` at ``http://host:port/metrics`` from construction to :meth:`close`."""

    def __init__(self, port: int, host: str, profile: str) -> None:
        from translab.metrics.prometheus import CallMetrics

        self.metrics = CallMetrics("translab_serve")
        self.profile = profile
        self.server = self.metrics.serve(port, host)
        self.port = int(self.server.server_port)
        print(f"serve: metrics at http://{host}:{self.port}/metrics", flush=True)

    def observe_call(self, brief: dict[str, Any], out_dir: Path, addr: dict[str, tuple[str, int]]) -> None:
        """Record a finished call from its summary.json in ``out_dir`` (``brief``: serve's short
        entry in ``finished``); the target label is the endpoint that received it."""
        path = Path(out_dir) / str(brief.get("call")) / "summary.json"
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            summary = dict(brief)
        summary.setdefault("profile", self.profile)
        if summary.get("status") != "ok":
            summary["failure"] = failure_kind(str(summary.get("reason") or ""))
        transport = str(summary.get("transport") or brief.get("transport"))
        host, port = addr.get("http" if transport == "webrtc" else "ws", ("", 0))
        target = f"http://{host}:{port}/offer" if transport == "webrtc" else f"ws://{host}:{port}/"
        self.metrics.observe(summary, target=target)

    def close(self) -> None:
        self.server.shutdown()
