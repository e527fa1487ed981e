"""What a TURN relay carries per Opus call: live WebRTC calls behind a symmetric NAT forced through
coturn (turn-udp, relay-only caller, callee with a public address), at several Opus bitrates; the
relay's own byte counters (client side: TURN ChannelData framing, SRTP, RTCP and consent checks
included) over the media duration, in kbit/s. Checks the rule of thumb "a TURN relay carries about
64 kbit/s per Opus call"."""

from __future__ import annotations

from typing import Any

BITRATES_BPS = (12000, 24000, 32000, 64000)


def run(duration_s: float = 5.0) -> dict[str, Any]:
    """kbit/s into the relay from the caller (``*_relay_in_kbps``: the media direction) and the
    relay's total client-side traffic, per Opus bitrate."""
    from translab.config import CallConfig
    from translab.call.netns import NetnsOptions, netns_call
    from translab.emulate.netns.system import unavailable_reason

    reason = unavailable_reason()
    if reason:
        return {"skipped": reason}
    out: dict[str, Any] = {"duration_s": duration_s}
    for br in BITRATES_BPS:
        cfg = CallConfig(transport="webrtc", codec="opus", bitrate=br, frame_ms=20, fec=False,
                         profile="clean-lan", duration_s=duration_s, metrics=())
        r = netns_call(cfg, NetnsOptions(caller_nat="symmetric", callee_nat="none", ice="turn-udp",
                                         relay_only=True, drain_s=0.5))
        s = r.summary
        tag = f"opus{br // 1000}k"
        out[f"{tag}_status"] = s.get("status")
        out[f"{tag}_pair"] = s.get("netns_pair")
        media_s = duration_s
        if s.get("status") == "ok":
            out[f"{tag}_relay_in_kbps"] = round(s["netns_relay_from_clients_bytes"] * 8 / media_s / 1e3, 2)
            out[f"{tag}_relay_total_kbps"] = round(s["netns_relay_bytes"] * 8 / media_s / 1e3, 2)
            out[f"{tag}_payload_kbps"] = round(float(r.trace["payload_bytes"].sum()) * 8 / media_s / 1e3, 2)
    return out


if __name__ == "__main__":  # pragma: no cover
    from translab.jsonio import dumps

    print(dumps(run(), indent=1))
