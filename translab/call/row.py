"""The result row of one call: every column it may have, with unit, group and meaning.

Declared like :data:`translab.trace.COLUMNS`. A row is built by :func:`translab.call.analysis.analyse`
from groups: the analysis fills ``call``, ``network``, ``receiver``, ``latency``, ``bandwidth``,
``quality``, ``emodel`` and ``provenance`` for every engine; an engine fills only its own groups
(``setup``, ``sender``, ``aiortc_stock``, ``transport``, ``browser``) through its
:class:`translab.call.record.CallRecord`. A column an engine reports must be declared here, in one of
its groups, and may not be one the analysis computes (:func:`check_engine_figures`), so no engine can
overwrite a computed figure and nothing rewrites the row afterwards.

Columns whose names are not fixed (receiver counters, per-metric quality, set-up milestones, the
emulator's and the netns backend's counters) are declared as families by prefix (``rx_*``).

``docs/columns.md`` is generated from this table (:func:`markdown`); a test checks it is current.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from translab.errors import TranslabError


@dataclass(frozen=True)
class Column:
    """One column (or, with ``family=True``, every column whose name starts with ``name``)."""

    name: str
    unit: str
    group: str
    meaning: str
    family: bool = False

    def matches(self, key: str) -> bool:
        return key.startswith(self.name) if self.family else key == self.name


#: Groups and who fills them: ``analysis`` (the same code for every engine) or ``engine``.
GROUPS: dict[str, tuple[str, str]] = {
    "call": ("analysis", "what was called: the resolved CallConfig echoed, and the outcome"),
    "network": ("analysis", "what the network did to the media packets (from the arrival trace)"),
    "receiver": ("analysis", "the receiver's playout, with W3C webrtc-stats names where one exists"),
    "latency": ("analysis", "mouth-to-ear delay and its budget"),
    "bandwidth": ("analysis", "bit rates under the header model (translab.metrics.bandwidth)"),
    "quality": ("analysis", "perceptual quality of the played audio against the clip"),
    "emodel": ("analysis", "ITU-T G.107 E-model and its inputs"),
    "provenance": ("analysis", "what produced the row"),
    "setup": ("engine", "call set-up milestones, ms since the call started (live engines)"),
    "sender": ("engine", "the sender's pacing and DTX"),
    "aiortc_stock": ("engine", "what aiortc's own receiver delivered (live WebRTC calls)"),
    "transport": ("engine", "engine- and transport-specific counters"),
    "conversation": ("conversation", ("a voice-agent conversation (translab.conversation.simulate, or .live "
                                      "with mode live), one row per conversation; mode, profile (the caller's access leg), seed and "
                                      "duration_s as above")),
    "external": ("engine", "a call to an endpoint outside translab (translab.call.external): what the caller "
                 "measures of the endpoint's reply and the path; the shared groups are the uplink as the "
                 "endpoint's socket received it, played by translab's receiver model"),
    "browser": ("engine", "a browser peer (translab.call.browser): the browser's own stats, and the reply "
                "direction played by its NetEq beside translab's model on the same arrivals"),
}

_C = Column
COLUMNS: tuple[Column, ...] = (
    # call
    _C("mode", "", "call", "simulate or live"),
    _C("status", "", "call", "ok or failed"),
    _C("reason", "", "call", "why the call failed (empty when ok)"),
    _C("transport", "", "call", "webrtc or websocket"),
    _C("codec", "", "call", "opus, pcm16 or pcmu"),
    _C("bitrate_bps", "bit/s", "call", "codec bit rate (Opus target; PCM: rate x bits)"),
    _C("frame_ms", "ms", "call", "audio per packet"),
    _C("sample_rate", "Hz", "call", "codec sample rate"),
    _C("framing", "", "call", "rtp, binary, realtime-json or twilio-json"),
    _C("fec", "", "call", "Opus in-band FEC on"),
    _C("dtx", "", "call", "Opus DTX on"),
    _C("profile", "", "call", "network profile name or path"),
    _C("seed", "", "call", "seed of the link models"),
    _C("playout", "", "call", "receiver policy (fixed:<ms>, adaptive, elastic, aiortc-stock)"),
    _C("conceal", "", "call", "concealment of missing frames"),
    _C("clip", "", "call", "clip name or path"),
    _C("duration_s", "s", "call", "audio sent"),
    # network
    _C("packets_sent", "packets", "network", "media packets sent"),
    _C("loss_rate", "ratio", "network", "share of sent packets that never arrived"),
    _C("late_rate", "ratio", "network", "share of sent packets discarded as too late by the receiver"),
    _C("effective_loss_rate", "ratio", "network",
       "share of sent frames not heard: lost, late, or skipped by the receiver, not recovered by FEC"),
    _C("net_delay_p50_ms", "ms", "network", "arrival - send of received packets, median"),
    _C("net_delay_p95_ms", "ms", "network", "arrival - send, 95th percentile"),
    _C("net_delay_p99_ms", "ms", "network", "arrival - send, 99th percentile"),
    _C("net_delay_max_ms", "ms", "network", "arrival - send, maximum"),
    _C("impair_events", "count", "network", "scheduled impairment windows (outages, handoffs) in the call"),
    _C("impair_ms", "ms", "network", "total length of those windows"),
    _C("impair_speech_ms", "ms", "network", "how much of them overlapped the clip's speech (Silero VAD)"),
    _C("impair_speech_share", "ratio", "network", "impair_speech_ms / impair_ms (NaN without windows)"),
    _C("lost_packets", "packets", "network", "packets lost in the network"),
    _C("lost_speech_share", "ratio", "network", "share of lost packets whose media fell in speech"),
    _C("clip_speech_share", "ratio", "network", "share of the clip that is speech (the baseline of the two above)"),
    _C("nack_sent", "count", "network", "NACK messages the receiver sent (translab.protection; 0 when off)"),
    _C("nack_seqs", "packets", "network", "sequence numbers asked for in those NACKs"),
    _C("rtx_sent", "packets", "network", "RTX retransmissions sent (RFC 4588)"),
    _C("rtx_recovered", "frames", "network", "frames played from a retransmission"),
    _C("red_recovered", "frames", "network", "frames played from a RED redundant block (RFC 2198)"),
    _C("feedback_kbps_down", "kbit/s", "network", "receiver feedback (NACK, reports) towards the sender"),
    _C("abr_", "", "network", "adaptive bitrate controller: bitrate mean/min/max (kbit/s), first reduction (s), "
       "share of time with FEC on", family=True),
    # receiver
    _C("concealed_ratio", "ratio", "receiver", "concealedSamples / totalSamplesReceived"),
    _C("interruptions", "count", "receiver", "W3C interruptionCount (concealment runs >= 150 ms)"),
    _C("interruption_s", "s", "receiver", "W3C totalInterruptionDuration"),
    _C("stalls", "count", "receiver", "playout stalls (nothing to play, no concealment)"),
    _C("stall_s", "s", "receiver", "total stall duration"),
    _C("rx_", "", "receiver", "receiver counters, W3C RTCInboundRtpStreamStats names "
       "(rx_concealedSamples, rx_jitterBufferDelay in s, ...) plus translab's own", family=True),
    # latency
    _C("frames_unplayed", "frames", "latency", "decoded/FEC frames that played no sample (left out of m2e)"),
    _C("m2e_p50_ms", "ms", "latency", "mouth-to-ear of played frames incl. codec lookahead, median"),
    _C("m2e_p95_ms", "ms", "latency", "mouth-to-ear, 95th percentile"),
    _C("m2e_p99_ms", "ms", "latency", "mouth-to-ear, 99th percentile"),
    _C("m2e_max_ms", "ms", "latency", "mouth-to-ear, maximum"),
    _C("m2e_mean_ms", "ms", "latency", "mouth-to-ear, mean (the E-model's Ta)"),
    _C("budget_", "ms", "latency", "median latency budget: lookahead, framing, network, jitter buffer",
       family=True),
    # bandwidth
    _C("payload_kbps_", "kbit/s", "bandwidth", "codec payload, per direction (_up/_down)", family=True),
    _C("message_kbps_", "kbit/s", "bandwidth", "application messages, per direction", family=True),
    _C("media_wire_kbps_", "kbit/s", "bandwidth", "media on the wire incl. headers, per direction",
       family=True),
    _C("control_kbps_", "kbit/s", "bandwidth", "RTCP / TCP ACKs and retransmissions, per direction",
       family=True),
    _C("wire_kbps_", "kbit/s", "bandwidth", "everything on the wire, per direction", family=True),
    _C("packets_per_s_", "1/s", "bandwidth", "packets on the wire per second, per direction", family=True),
    # quality
    _C("plcmos", "MOS", "quality", "PLCMOS v2 of the played audio"),
    _C("pesq_wb", "MOS-LQO", "quality", "PESQ wide-band (P.862.2)"),
    _C("pesq_nb", "MOS-LQO", "quality", "PESQ narrow-band (P.862)"),
    _C("stoi", "0-1", "quality", "STOI intelligibility"),
    _C("estoi", "0-1", "quality", "extended STOI"),
    _C("visqol", "MOS", "quality", "ViSQOL v3 speech mode"),
    _C("align_lag_ms", "ms", "quality", "delay removed to align the played audio with the clip"),
    _C("align_drift_ms", "ms", "quality", "change of that delay over the call"),
    _C("codec_", "", "quality", "the same metrics for the codec alone (perfect network)", family=True),
    # emodel
    _C("emodel_r", "R", "emodel", "transmission rating R (G.107 / G.107.1 / G.107.2 by band)"),
    _C("emodel_mos", "MOS-CQE", "emodel", "MOS from R"),
    _C("emodel_ie_source", "", "emodel", "where the equipment impairment Ie comes from"),
    _C("emodel_ta_ms", "ms", "emodel", "absolute delay Ta (mean mouth-to-ear)"),
    _C("emodel_ppl_pct", "%", "emodel", "packet-loss probability Ppl (concealed + dropped share)"),
    _C("emodel_burst_r", "", "emodel", "burst ratio BurstR"),
    _C("emodel_ie", "", "emodel", "equipment impairment Ie"),
    _C("emodel_bpl", "", "emodel", "packet-loss robustness Bpl"),
    _C("emodel_band", "", "emodel", "nb or wb (scale of R)"),
    # provenance
    _C("config_hash", "", "provenance", "hash of the resolved CallConfig"),
    _C("config", "", "provenance", "the resolved CallConfig as JSON"),
    _C("v_", "", "provenance", "versions of translab, its libraries and the git commit", family=True),
    # engine groups
    _C("setup_", "ms", "setup", "set-up milestones since the call started (ICE, DTLS, TCP, TLS, "
       "upgrade, first packet sent/received, first audio played; setup_t0_ms: media start)",
       family=True),
    _C("dtx_skipped", "frames", "sender", "frames the Opus encoder did not send (DTX)"),
    _C("send_late_", "ms", "sender", "how late the live sender handed packets to the transport "
       "(p50/p99)", family=True),
    _C("stock_", "", "aiortc_stock", "aiortc's own receiver: frames, samples at 48 kHz, mouth-to-ear "
       "on a steady sink (ms), and quality metrics of its audio (stock_<metric>)", family=True),
    _C("tcp_", "", "transport", "simulated TCP: retransmissions and ACKs of the delivery model",
       family=True),
    _C("emu_", "", "transport", "the in-process live emulator's counters and timer accuracy",
       family=True),
    _C("host_", "", "transport", "event-loop stalls of the host during a live call; with protection, "
       "how long after its arrival on the emulated wire the receiver handled an RTP packet "
       "(host_rx_lag_p50_ms / _p99_ms) and the datagrams the host handed over after their launch time "
       "(host_late_launches, host_launch_late_max_ms)", family=True),
    _C("rt_scheduling", "", "transport", "the live call ran under SCHED_RR"),
    _C("rtc_", "", "transport", "aiortc getStats() of caller and callee (W3C names)", family=True),
    _C("rtp_", "packets", "transport", "RTP packets seen by the live taps (with NACK: RTCP NACKs sent "
       "and received, RTX packets sent and received)", family=True),
    _C("sdp_", "", "transport", "negotiated Opus fmtp lines (and, with protection, the rtcp-fb, rtx, "
       "red and ssrc-group lines)", family=True),
    _C("ws_deflate", "", "transport", "permessage-deflate offered"),
    _C("server_messages", "messages", "transport", "messages the WebSocket server received"),
    _C("echo_", "", "transport", "WebSocket echo round trips (ms) and messages", family=True),
    _C("backend", "", "transport", "netns when the call ran on the namespace backend"),
    _C("netns_", "", "transport", "namespace backend: NATs, firewall, ICE, selected pair, relay "
       "bytes, one-way delay (ms)", family=True),
    _C("kernel_tcp_", "", "transport", "the caller's kernel TCP counters (netns backend)", family=True),
    _C("ended", "", "transport", "why a served call ended"),
    _C("echo_dropped", "messages", "transport", "echo messages the server dropped"),
    _C("error_events", "count", "transport", "error events a served WebSocket call sent"),
    _C("clock", "", "transport", "receiver-estimated when the sender's clock is unknown (served calls)"),
    # conversation
    _C("topology", "", "conversation", "direct-ws, webrtc-gateway or twilio"),
    _C("dc_profile", "", "conversation", "profile of every datacenter leg"),
    _C("turns", "count", "conversation", "caller turns in the script"),
    _C("turns_answered", "count", "conversation", "turns whose reply was heard at the caller's ear"),
    _C("vad_turns", "count", "conversation", "turns the model's server VAD detected"),
    _C("bargein_every", "", "conversation", "the caller interrupts every k-th reply (0: never)"),
    _C("turn_latency_", "ms", "conversation", "end of caller speech -> first agent audio at the caller's "
       "ear: p50, p95 and mean over the turns", family=True),
    _C("uplink_", "ms", "conversation", "budget part: caller's end -> the model has that audio (p50, mean)",
       family=True),
    _C("vad_", "ms", "conversation", "budget part: VAD end-pointing (p50, mean)", family=True),
    _C("think_", "ms", "conversation", "budget part: model + TTS to the first reply delta (p50, mean; "
       "think_median_ms: the configured median)", family=True),
    _C("downlink_", "ms", "conversation", "budget part: first delta sent -> heard at the ear (p50, mean)",
       family=True),
    _C("bargeins", "count", "conversation", "turns that interrupt the agent"),
    _C("bargein_stop_", "ms", "conversation", "caller onset -> agent audio stops at the ear, p50 / p95",
       family=True),
    _C("agent_after_p50_ms", "ms", "conversation", "agent audio heard after the caller's onset, median"),
    _C("underruns", "count", "conversation", "gaps inside agent speech at the caller's ear"),
    _C("underrun_ms", "ms", "conversation", "total length of those gaps"),
    _C("wer", "ratio", "conversation", "word error rate of PocketSphinx on what the model received (mean over turns)"),
    _C("wer_clean", "ratio", "conversation", "the same recogniser on the clean caller audio (its own baseline)"),
    _C("pacing", "", "conversation", "reply pacing: burst (TTS faster than real time) or realtime"),
    _C("lead_ms", "ms", "conversation", "burst: how far ahead of real time the model may send (inf: no limit)"),
    _C("flush", "", "conversation", "the listener's side flushes buffered reply audio on barge-in"),
    _C("up_", "", "conversation", "quality of what the model received (up_<metric>)", family=True),
    _C("down_plcmos", "MOS", "conversation", "PLCMOS of the agent's speech at the caller's ear"),
    _C("conversation_wall_s", "s", "conversation", "wall time of the conversation (simulated, or live in real time)"),
    _C("edge_playout", "", "conversation", "the jitter buffer where the caller's RTP leg ends (gateway, carrier): "
       "adaptive or aiortc-stock (a live edge's); empty on direct-ws"),
    _C("sim_turn_latency_p50_ms", "ms", "conversation", "live row: turn_latency_p50_ms of the simulation of the "
       "same conversation (profile, seed, script, think-time draws)"),
    _C("live_minus_sim_p50_ms", "ms", "conversation", "live row: turn_latency_p50_ms live minus simulated "
       "(the issue's agreement criterion: within 20 ms)"),
    # external endpoint
    _C("target", "", "external", "the endpoint's URL (ws[s]:// WebSocket, http[s]:// WebRTC offer URL)"),
    _C("failure", "", "external", "why the call failed, machine-readable (translab.transport.external.FAILURES; "
       "empty when ok)"),
    _C("connect_ms", "ms", "external", "dial until media can flow (WebRTC: DTLS connected; WebSocket: upgrade done)"),
    _C("first_audio_out_ms", "ms", "external", "dial until the endpoint's first audible audio reached the caller"),
    _C("speech_end_s", "s", "external", "end of the caller's speech (last audible 10 ms of the clip)"),
    _C("turn_latency_ms", "ms", "external", "end of the caller's speech until the endpoint's first audible audio "
       "(NaN when the reply started during the speech, e.g. an echo)"),
    _C("reply_audio_s", "s", "external", "audio the endpoint sent back"),
    _C("reply_audible_s", "s", "external", "its audible span (first to last audible 10 ms, 0.1 s margins)"),
    _C("reply_rate", "Hz", "external", "sample rate of the reply"),
    _C("reply_underruns", "count", "external", "gaps a client playing each reply chunk on arrival, unbuffered, "
       "would hear (>= 5 ms)"),
    _C("reply_underrun_ms", "ms", "external", "total length of those gaps"),
    _C("reply_loss_rate", "ratio", "external", "share of the reply's RTP packets that did not arrive (WebSocket: 0)"),
    _C("reply_jitter_ms", "ms", "external", "RFC 3550 interarrival jitter of the reply"),
    _C("reply_plcmos", "MOS", "external", "PLCMOS v2 of the reply's audible span (non-intrusive)"),
    _C("rtt_ms", "ms", "external", "round trip: RTCP (WebRTC) or WebSocket ping/pong (median)"),
    _C("reported_loss_up", "ratio", "external", "uplink loss the endpoint reported in RTCP receiver reports "
       "(WebRTC; NaN for WebSocket)"),
    _C("ws_pings", "count", "external", "WebSocket pings answered"),
    _C("whip_delete_status", "", "external", "HTTP status of the DELETE that ended a WHIP session (RFC 9725; "
       "200 expected; null when it failed)"),
    _C("clear_events", "count", "external", "barge-in flushes the endpoint sent (Twilio clear, Realtime truncate)"),
    # browser peer
    _C("peer", "", "browser", "who called: chromium (headless Chromium, libwebrtc)"),
    _C("browser_", "", "browser", "the browser's getStats() (W3C names): browser_out_* outbound-rtp, "
       "browser_remote_in_* remote-inbound-rtp, browser_pair_* candidate pair, browser_in_* inbound-rtp "
       "(reply leg); its user agent; what its offer and translab's answer carry for audio "
       "(browser_offer_*/browser_answer_*: codecs, opus_rtcp_fb, opus_fmtp); what its encoder sent "
       "(browser_out_ptime_ms ms, browser_out_payload_kbps kbit/s); on the reply leg the quality of what "
       "it played (browser_<metric>, against the clip) and how long it recorded (browser_recorded_s, s)",
       family=True),
    _C("neteq_", "", "browser", "reply leg: NetEq's W3C inbound-rtp counters over the media window and the "
       "compared figures (translab.playout.neteq_check: concealed_share ratio, *_ms ms, *_samples at "
       "48 kHz, concealment_events count)", family=True),
    _C("down_", "", "browser", "the reply leg's headline figures on the uplink row: down_neteq_<figure> "
       "(NetEq), down_model_<figure> (translab's adaptive playout of the same arrivals; and "
       "down_model_<metric>, its quality), down_browser_<metric> (what the browser played), "
       "down_loss_rate (ratio), down_log_unmatched (packets)", family=True),
    _C("gap_", "", "browser", "reply leg: model - NetEq per compared figure (unit of the figure)",
       family=True),
)


def column(key: str) -> Column | None:
    """The declaration of ``key`` (an exact column before a family), or None."""
    for c in COLUMNS:
        if not c.family and c.name == key:
            return c
    best = None
    for c in COLUMNS:
        if c.family and key.startswith(c.name) and (best is None or len(c.name) > len(best.name)):
            best = c
    return best


def group_of(key: str) -> str | None:
    c = column(key)
    return c.group if c else None


def check_engine_figures(figures: dict[str, object], engine: str) -> None:
    """Raise TranslabError unless every key of ``figures`` is a declared column of an engine group."""
    for key in figures:
        g = group_of(key)
        if g is None:
            raise TranslabError(f"engine {engine}: column {key!r} is not declared in translab.call.row")
        if GROUPS[g][0] != "engine":
            raise TranslabError(f"engine {engine}: column {key!r} belongs to the computed group {g!r}")


def shared_columns(row: dict[str, object]) -> set[str]:
    """The columns of ``row`` that the analysis computes (the same for every engine)."""
    return {k for k in row if (g := group_of(k)) is not None and GROUPS[g][0] == "analysis"}


def setup_ms(df: pd.DataFrame) -> pd.Series:
    """Per row: time from the start of a live call to its first media arriving (ms), from the setup
    milestones the live transports record (NaN for simulated cells).

    Prefers a "first ... received" milestone (comparable across transports); otherwise the latest
    milestone recorded.
    """
    cols = [c for c in df.columns if c.startswith("setup_") and pd.api.types.is_numeric_dtype(df[c])]
    if not cols:
        return pd.Series(np.nan, index=df.index, dtype=float)

    def to_ms(c: str) -> pd.Series:
        v = pd.to_numeric(df[c], errors="coerce")
        return v * 1000.0 if c.endswith("_s") and not c.endswith("_ms") else v

    prefer = [c for c in cols if "first" in c and ("received" in c or "recv" in c)]
    prefer = [c for c in prefer if "stock" not in c]
    if prefer:
        return pd.concat([to_ms(c) for c in prefer], axis=1).min(axis=1)
    cols = [c for c in cols if "t0" not in c]
    return pd.concat([to_ms(c) for c in cols], axis=1).max(axis=1) if cols else pd.Series(np.nan, index=df.index)


def markdown() -> str:
    """The column list as Markdown (docs/columns.md)."""
    lines = ["# Result-row columns", "",
             "Generated from `translab/call/row.py` (`python -m translab.call.row > docs/columns.md`). "
             "A name ending in `*` is a family of columns with that prefix.", ""]
    for g, (who, what) in GROUPS.items():
        lines += [f"## {g}", "", f"{what} (filled by the {who}).", "", "| column | unit | meaning |",
                  "|---|---|---|"]
        for c in COLUMNS:
            if c.group == g:
                lines.append(f"| `{c.name}{'*' if c.family else ''}` | {c.unit} | {c.meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
