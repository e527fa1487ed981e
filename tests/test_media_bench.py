"""translab.bench.codec runs and reports figures with units (no speed assertions)."""

from __future__ import annotations

from translab.bench import codec


def test_codec_bench_figures():
    out = codec.run()
    assert out["libopus_version"].startswith("libopus")
    for key in ("opus_encode_ms_per_frame", "opus_decode_ms_per_frame",
                "opus_10s_48k_mono_encode_decode_s", "opus_plc_ms_per_frame"):
        assert out[key] > 0, key
    assert 40 < out["opus_mean_packet_bytes"] < 120  # 32 kbit/s x 20 ms = 80 bytes on average
