"""Prometheus metrics of calls, for operations: synthetic probes (``translab probe``, prefix
``translab_probe``) and calls received by ``translab serve`` (prefix ``translab_serve``).

One :class:`CallMetrics` per process and prefix, on its own registry (so tests and two exporters in
one process never collide), fed with call summaries (:meth:`CallMetrics.observe`). Names and units
follow Prometheus conventions: base units (seconds, ratios 0..1), ``_seconds`` / ``_ratio`` /
``_total`` suffixes; labels ``transport``, ``target`` and ``profile`` on every series.

==============================================  =========  =============================================
metric (``P`` = prefix)                         type       meaning
==============================================  =========  =============================================
``P_calls_total``                               counter    calls attempted (probes) / received (serve)
``P_failures_total{reason}``                    counter    failed calls by reason (FAILURES, see
                                                           :mod:`translab.transport.external`)
``P_up``                                        gauge      1 when the last call succeeded, else 0
``P_last_success_timestamp_seconds``            gauge      Unix time of the last successful call
``P_setup_seconds``                             histogram  dial until media can flow (probes)
``P_first_audio_out_seconds``                   histogram  dial until the endpoint's first audible audio
``P_turn_latency_seconds``                      histogram  end of caller speech until the reply (when
                                                           the endpoint answers a turn)
``P_mouth_to_ear_seconds``                      histogram  median mouth-to-ear of the uplink (served
                                                           calls: receiver-estimated clock; probes: to
                                                           the endpoint's socket + translab's playout)
``P_loss_ratio{direction}``                     gauge      packets lost / sent of the last call
``P_jitter_seconds``                            gauge      interarrival jitter (RFC 3550) of the last call
``P_rtt_seconds``                               gauge      round-trip time of the last call
``P_quality_mos{estimator}``                    gauge      quality estimate of the last call, MOS 1..5
                                                           (plcmos: of the reply, probes; emodel: of
                                                           the uplink)
==============================================  =========  =============================================
"""

from __future__ import annotations

import math
import time
from typing import Any

__all__ = ["CallMetrics", "LABELS", "metric_names", "SETUP_BUCKETS_S", "LATENCY_BUCKETS_S"]

LABELS: tuple[str, ...] = ("transport", "target", "profile")

#: histogram buckets (s): set-up is ICE + DTLS or TCP + TLS + upgrade over a bad network
SETUP_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
#: histogram buckets (s) for first audio out, turn latency and mouth-to-ear
LATENCY_BUCKETS_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def _f(v: Any) -> float:
    """A summary value as float (None and non-numbers: NaN)."""
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


class CallMetrics:
    """The metric families of one prefix on a private registry (see the module docstring)."""

    def __init__(self, prefix: str = "translab_probe", registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.prefix = prefix
        self.registry = registry if registry is not None else CollectorRegistry()
        r, p, lab = self.registry, prefix, LABELS
        self.calls = Counter(f"{p}_calls", "Calls attempted (probes) or received (serve)", lab, registry=r)
        self.failures = Counter(f"{p}_failures", "Failed calls by reason", lab + ("reason",), registry=r)
        self.up = Gauge(f"{p}_up", "1 when the last call succeeded, else 0", lab, registry=r)
        self.last_success = Gauge(f"{p}_last_success_timestamp_seconds",
                                  "Unix time of the last successful call", lab, registry=r)
        self.setup = Histogram(f"{p}_setup_seconds", "Dial until media can flow", lab,
                               buckets=SETUP_BUCKETS_S, registry=r)
        self.first_audio = Histogram(f"{p}_first_audio_out_seconds",
                                     "Dial until the endpoint's first audible audio reached the caller",
                                     lab, buckets=LATENCY_BUCKETS_S, registry=r)
        self.turn = Histogram(f"{p}_turn_latency_seconds", "End of caller speech until the endpoint's reply",
                              lab, buckets=LATENCY_BUCKETS_S, registry=r)
        self.m2e = Histogram(f"{p}_mouth_to_ear_seconds",
                             "Median mouth-to-ear of a received call (receiver-estimated clock)", lab,
                             buckets=LATENCY_BUCKETS_S, registry=r)
        self.loss = Gauge(f"{p}_loss_ratio", "Packets lost / sent in the last call", lab + ("direction",),
                          registry=r)
        self.jitter = Gauge(f"{p}_jitter_seconds", "Interarrival jitter (RFC 3550) in the last call", lab,
                            registry=r)
        self.rtt = Gauge(f"{p}_rtt_seconds", "Round-trip time in the last call", lab, registry=r)
        self.quality = Gauge(f"{p}_quality_mos", "Quality estimate of the last call (MOS 1..5)",
                             lab + ("estimator",), registry=r)

    def observe(self, summary: dict[str, Any], *, target: str | None = None) -> None:
        """Record one finished call from its summary (an external call's or a served call's)."""
        labels = {"transport": str(summary.get("transport") or "unknown"),
                  "target": str(target if target is not None else summary.get("target") or ""),
                  "profile": str(summary.get("profile") or "")}
        self.calls.labels(**labels).inc()
        if summary.get("status") != "ok":
            self.failure(labels, str(summary.get("failure") or "error"), counted=True)
            return
        self.up.labels(**labels).set(1)
        self.last_success.labels(**labels).set(time.time())
        for hist, key in ((self.setup, "connect_ms"), (self.first_audio, "first_audio_out_ms"),
                          (self.turn, "turn_latency_ms"), (self.m2e, "m2e_p50_ms")):
            v = _f(summary.get(key))
            if not math.isnan(v):
                hist.labels(**labels).observe(v / 1e3)
        for direction, key in (("up", "loss_rate"), ("down", "reply_loss_rate")):
            v = _f(summary.get(key))
            if not math.isnan(v):
                self.loss.labels(**labels, direction=direction).set(v)
        jitter = _f(summary.get("reply_jitter_ms")) / 1e3  # probes: of the reply
        if math.isnan(jitter):
            jitter = _f(summary.get("rx_jitter"))  # W3C RTCInboundRtpStreamStats.jitter, s
        for gauge, v in ((self.jitter, jitter), (self.rtt, _f(summary.get("rtt_ms")) / 1e3)):
            if not math.isnan(v):
                gauge.labels(**labels).set(v)
        for estimator, key in (("plcmos", "reply_plcmos"), ("emodel", "emodel_mos")):
            v = _f(summary.get(key))
            if not math.isnan(v):
                self.quality.labels(**labels, estimator=estimator).set(v)

    def declare(self, labels: dict[str, str], reasons: tuple[str, ...] = ()) -> None:
        """Create the series of one target at 0 before its first call, so ``rate()`` and
        ``increase()`` see the first call and the first failure of each reason."""
        self.calls.labels(**labels)
        for reason in reasons:
            self.failures.labels(**labels, reason=reason)

    def failure(self, labels: dict[str, str], reason: str, *, counted: bool = False) -> None:
        """Count one failed call with ``reason`` (``counted``: already in ``calls_total``)."""
        if not counted:
            self.calls.labels(**labels).inc()
        self.failures.labels(**labels, reason=reason).inc()
        self.up.labels(**labels).set(0)

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Expose the registry at ``http://host:port/metrics`` (prometheus_client's own server, in a
        thread); returns the server (``.shutdown()`` stops it, ``.server_port`` is the bound port)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def exposition(self) -> str:
        """The registry in the Prometheus text format (what a scrape returns)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()


def metric_names(prefix: str = "translab_probe") -> set[str]:
    """Every sample name a :class:`CallMetrics` with ``prefix`` can export (with the ``_bucket``,
    ``_sum``, ``_count``, ``_total`` and ``_created`` series), for checking dashboards and alerts."""
    m = CallMetrics(prefix)
    names: set[str] = set()
    for family in m.registry.collect():
        base = family.name
        if family.type == "counter":
            names |= {base + "_total", base + "_created"}
        elif family.type == "histogram":
            names |= {base + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(base)
    return names
