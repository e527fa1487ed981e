"""Make ``capacity-drop.mahimahi`` (run from the repository root:
``.venv/bin/python data/traces/make_capacity_drop.py``). Deterministic, no randomness.

A mahimahi link trace (one millisecond timestamp per 1500-byte delivery opportunity) whose capacity
is 2 Mbit/s, falls to 48 kbit/s from 3 s to 7 s (one opportunity every 250 ms: below what Opus at
64 kbit/s needs on the wire, about 82 kbit/s with IP/UDP/RTP/SRTP headers at 20 ms frames), and is
2 Mbit/s again from 7 s to 30 s (the period it wraps at). Synthetic: the shape of a cellular uplink
that loses most of its capacity for a few seconds (a handover to a congested cell), not a recording.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def stamps() -> list[int]:
    out: list[int] = []
    for start, end, every_ms in ((0, 3000, 6), (3000, 7000, 250), (7000, 30000, 6)):
        out += list(range(start + every_ms, end + 1, every_ms))
    return out


if __name__ == "__main__":
    (HERE / "capacity-drop.mahimahi").write_text("".join(f"{s}\n" for s in stamps()))
