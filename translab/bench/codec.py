"""Codec cost: Opus encode/decode per 20 ms frame, a 10 s clip round trip, PCM16 and G.711.

Timings are wall-clock medians of repeated runs on this machine (``time.perf_counter``);
figures carry their unit in the key name.
"""

from __future__ import annotations

import numpy as np

from translab.bench import time_s
from translab.media import g711, opus, pcm
from translab.media.audio import to_int16


def _signal(rate: int, seconds: float) -> np.ndarray:
    """10 s of speech (a committed clip, looped) at ``rate`` Hz as int16; noise if no clip."""
    from translab.media.clips import list_clips, load_clip

    n = int(rate * seconds)
    names = list_clips()
    if names:
        x = load_clip(names[0], rate)
        x = np.tile(x, -(-n // len(x)))[:n]
    else:
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1
    return to_int16(x)


def run() -> dict:
    """Opus (48 kHz mono, 20 ms, 32 kbit/s VBR, complexity 9, voip) and PCM/G.711 costs."""
    rate, frame_ms, seconds = 48000, 20, 10.0
    x = _signal(rate, seconds)
    n = rate * frame_ms // 1000
    frames = [x[i * n:(i + 1) * n] for i in range(len(x) // n)]

    def encode_all() -> list[bytes]:
        enc = opus.OpusEncoder(rate, 1, frame_ms, 32000)
        return [enc.encode(f) for f in frames]

    packets = encode_all()

    def decode_all() -> None:
        dec = opus.OpusDecoder(rate, 1)
        for p in packets:
            dec.decode(p)

    def round_trip() -> None:
        enc = opus.OpusEncoder(rate, 1, frame_ms, 32000)
        dec = opus.OpusDecoder(rate, 1)
        for f in frames:
            dec.decode(enc.encode(f))

    def conceal_all() -> None:
        dec = opus.OpusDecoder(rate, 1)
        dec.decode(packets[0])
        for _ in frames:
            dec.conceal(n)

    enc_s = time_s(encode_all, 3)
    dec_s = time_s(decode_all, 3)
    rt_s = time_s(round_trip, 3)
    plc_s = time_s(conceal_all, 3)
    x8 = _signal(8000, seconds)
    ulaw_s = time_s(lambda: g711.ulaw_decode(g711.ulaw_encode(x8)), 5)
    pcm_s = time_s(lambda: [pcm.pcm16_decode(pcm.pcm16_encode(f))
                               for f in pcm.split_frames(x, rate, frame_ms)], 5)
    return {
        "libopus_version": opus.libopus_version(),
        "libopus_path": opus.libopus_path(),
        "opus_capabilities": {k: v for k, v in opus.capabilities().items() if k != "version"},
        "opus_settings": "48 kHz mono, 20 ms, 32000 bit/s VBR, complexity 9, voip",
        "opus_encode_ms_per_frame": 1000 * enc_s / len(frames),
        "opus_decode_ms_per_frame": 1000 * dec_s / len(frames),
        "opus_plc_ms_per_frame": 1000 * plc_s / len(frames),
        "opus_mean_packet_bytes": float(np.mean([len(p) for p in packets])),
        "opus_10s_48k_mono_encode_decode_s": rt_s * 10.0 / seconds,
        "opus_10s_target_s": 0.2,
        "g711_ulaw_10s_8k_encode_decode_s": ulaw_s,
        "pcm16_10s_48k_frame_encode_decode_s": pcm_s,
    }
