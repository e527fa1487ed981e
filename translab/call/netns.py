"""The namespace engine: a live call on real kernel stacks in network namespaces, behind NATs and
firewalls, with coturn for STUN/TURN (see translab.emulate.netns.call for the lab side). Needs root:
raises :class:`translab.emulate.netns.system.NetnsUnavailable` (one line) without it."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from translab.call.engine import ClipEngine, run_call
from translab.call.live import leg_record, run_outside_event_loop
from translab.call.prepare import PreparedCall
from translab.call.record import CallRecord
from translab.emulate.netns.call import NetnsOptions
from translab.emulate.realtime import realtime_mode


def _relay_figures(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "netns_relay_sessions": usage["sessions"],
        "netns_relay_bytes": usage["received_bytes"] + usage["sent_bytes"],
        "netns_relay_packets": usage["received_packets"] + usage["sent_packets"],
        "netns_relay_from_clients_bytes": usage["received_bytes"],
        "netns_relay_to_clients_bytes": usage["sent_bytes"],
        "netns_relay_peer_bytes": usage.get("peer_received_bytes", 0) + usage.get("peer_sent_bytes", 0),
    }


@dataclass
class NetnsEngine(ClipEngine):
    """``opts``: NATs, firewalls, ICE option and timeouts; ``pcap``: path to write the caller's
    packets; ``run_dir``: where the lab keeps forwarder stats and coturn's config and log (default:
    ``<out_dir>/netns``, or a temporary directory removed after a successful call)."""

    opts: NetnsOptions = field(default_factory=NetnsOptions)
    pcap: str | Path | None = None
    progress: Callable[[float], None] | None = None
    run_dir: str | Path | None = None
    name = "netns"
    mode = "live"

    def run(self, call: PreparedCall, out_dir: Path | None = None) -> CallRecord:
        return run_outside_event_loop(lambda: self._run(call, out_dir))

    def _run(self, call: PreparedCall, out_dir: Path | None) -> CallRecord:
        from translab.emulate.coturn import Coturn
        from translab.emulate.netns.aio import run_ending_on_sigterm
        from translab.emulate.netns.call import call_in_lab, lab_config_for
        from translab.emulate.netns.lab import Lab

        cfg, stream, opts = call.cfg, call.stream, self.opts
        assert stream is not None
        figures: dict[str, Any] = {"backend": "netns", "netns_caller_nat": opts.caller_nat,
                                   "netns_callee_nat": opts.callee_nat, "netns_firewall": opts.firewall,
                                   "netns_ice": opts.ice, "netns_relay_only": opts.relay_only}
        run_dir = self.run_dir
        if run_dir is None and out_dir is not None:
            run_dir = Path(out_dir) / "netns"  # forwarder stats and coturn's config and log, kept with the call
        own_tmp = run_dir is None
        usage: dict[str, Any] = {}
        with Lab(lab_config_for(cfg, opts, self.pcap), run_dir=run_dir) as lab:
            coturn = Coturn(lab).start() if (opts.ice != "none" and cfg.transport == "webrtc") else None
            try:
                with realtime_mode():
                    # SIGTERM ends the call as Ctrl-C does (asyncio.run alone hung: issue 15)
                    rec, more = run_ending_on_sigterm(call_in_lab(lab, coturn, cfg, stream, opts, self.progress))
            finally:
                usage = coturn.stop() if coturn is not None else {}
            if cfg.transport == "websocket":  # how the client's kernel TCP repaired losses
                from translab.emulate.netns.kernel_stats import tcp_counters

                figures.update({f"kernel_tcp_{k}": v for k, v in tcp_counters(lab, "a").items()})
        figures.update(more)
        figures["netns_connected"] = rec.status == "ok"
        if usage:
            figures.update(_relay_figures(usage))
        st = lab.stats
        for port, n in st.get("bytes_out", {}).items():
            figures[f"netns_bytes_to_{port}"] = n
        for port, n in st.get("packets_out", {}).items():
            figures[f"netns_packets_to_{port}"] = n
        figures["netns_link_lost"] = st.get("link_lost", 0)
        figures["netns_drops"] = json.dumps(st.get("drops", {}), sort_keys=True)
        figures["netns_release_late_p99_ms"] = st.get("release_late_p99_ms", math.nan)
        figures["netns_run_dir"] = str(lab.run_dir)
        figures["netns_prefix"] = lab.names.prefix
        if own_tmp and rec.status == "ok":  # nothing to look into: don't litter /tmp (failed runs keep logs)
            shutil.rmtree(lab.run_dir, ignore_errors=True)
            figures["netns_run_dir"] = ""
        record = leg_record(call, rec, figures)
        trace = record.trace
        owd = ((trace["arrival_s"] - trace["send_s"]) * 1e3).dropna()
        if len(owd):  # one-way delay of media packets (ms): relay cells minus direct cells = relay cost
            record.figures["netns_one_way_p50_ms"] = float(owd.median())
            record.figures["netns_one_way_p95_ms"] = float(owd.quantile(0.95))
        if usage and rec.status == "ok" and len(stream.capture_s):
            media_s = float(stream.capture_s[-1] - stream.capture_s[0]) + float(cfg.frame_ms) / 1e3
            record.figures["netns_relay_kbps"] = record.figures["netns_relay_bytes"] * 8 / media_s / 1e3
            # what entered the relay from the call's clients (one talker's stream here, the audio is
            # one-way, plus RTCP), kbit/s: TURN ChannelData/Send payloads as coturn counts them
            record.figures["netns_relay_in_kbps"] = (record.figures["netns_relay_from_clients_bytes"]
                                                     * 8 / media_s / 1e3)
        return record


def netns_call(cfg: Any, opts: NetnsOptions | None = None, *, out_dir: str | Path | None = None,
               pcap: str | Path | None = None, progress: Callable[[float], None] | None = None,
               run_dir: str | Path | None = None) -> Any:
    """One live call on the namespace backend (blocking, real time): ``run_call`` with a
    :class:`NetnsEngine`; the row has ``mode == "live"``, ``backend == "netns"`` and ``netns_*``."""
    engine = NetnsEngine(opts or NetnsOptions(), pcap=pcap, progress=progress, run_dir=run_dir)
    return run_call(cfg, engine, out_dir)
