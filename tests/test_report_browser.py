"""The report's browser section (translab.report.browser) on a hand-made result table, and the SDP
facts the browser engine records (translab.call.browser.sdp_audio)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from translab.call.browser import sdp_audio
from translab.report import browser as br
from translab.report.html import browser_section

#: the audio section of a Chromium 156 offer (trimmed: no candidates, one of its extensions)
CHROME_OFFER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
m=video 9 UDP/TLS/RTP/SAVPF 96
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
"""


def test_sdp_audio_reads_the_audio_section_only() -> None:
    a = sdp_audio(CHROME_OFFER)
    assert a["codecs"].split() == ["opus/48000/2", "red/48000/2", "G722/8000", "PCMU/8000", "PCMA/8000", "CN/8000",
                                   "telephone-event/48000", "telephone-event/8000"]
    assert a["opus_rtcp_fb"] == "transport-cc"  # the video section's nack is not audio's
    assert a["opus_fmtp"] == "a=fmtp:111 minptime=10;useinbandfec=1"
    answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 nack\r\n" \
             "a=fmtp:111 useinbandfec=1;ptime=20\r\n"
    b = sdp_audio(answer)
    assert b == {"codecs": "opus/48000/2", "opus_rtcp_fb": "nack", "opus_fmtp": "a=fmtp:111 useinbandfec=1;ptime=20"}
    assert sdp_audio("v=0\n") == {"codecs": "", "opus_rtcp_fb": "", "opus_fmtp": ""}


def _rows() -> pd.DataFrame:
    """Two profiles x 4 seeds, each seed once per caller; Chromium scores 0.3 PLCMOS above aiortc on 4g."""
    rng = np.random.default_rng(1)
    rows = []
    for profile in ("clean-lan", "4g"):
        for seed in range(1, 5):
            base = 3.5 + 0.1 * rng.normal()
            common = dict(status="ok", mode="live", transport="webrtc", profile=profile, seed=seed,
                          clip="awb-directions", loss_rate=0.01)
            rows.append({**common, "peer": None, "plcmos": base, "pesq_wb": 3.0, "stoi": 0.9,
                         "payload_kbps_up": 24.0, "setup_offer_ready_ms": 2.0, "setup_answer_received_ms": 50.0,
                         "setup_dtls_connected_ms": 90.0 + seed,
                         "sdp_offer_opus_fmtp": "a=fmtp:96 useinbandfec=1;maxaveragebitrate=24000;ptime=20",
                         "sdp_answer_opus_fmtp": "a=fmtp:96 useinbandfec=1;maxaveragebitrate=24000;ptime=20",
                         "frame_ms": 20.0})
            rows.append({**common, "peer": "chromium", "plcmos": base + (0.3 if profile == "4g" else 0.0),
                         "pesq_wb": 3.0, "stoi": 0.9, "payload_kbps_up": 21.0, "setup_offer_ready_ms": 300.0,
                         "setup_answer_ms": 310.0, "setup_connected_ms": 400.0 + seed,
                         "browser_offer_opus_fmtp": "a=fmtp:111 minptime=10;useinbandfec=1",
                         "browser_answer_opus_fmtp": "a=fmtp:111 useinbandfec=1;usedtx=0;maxaveragebitrate=24000",
                         "browser_offer_codecs": "opus/48000/2 red/48000/2 G722/8000",
                         "browser_answer_codecs": "opus/48000/2", "browser_offer_opus_rtcp_fb": "transport-cc",
                         "browser_answer_opus_rtcp_fb": "", "browser_out_ptime_ms": 20.0,
                         "browser_out_payload_kbps": 22.5, "down_browser_plcmos": base - 0.2,
                         "down_model_plcmos": base, "down_neteq_mean_buffer_delay_ms": 60.0,
                         "down_model_mean_buffer_delay_ms": 55.0, "down_neteq_concealed_share": 0.02,
                         "down_model_concealed_share": 0.01})
    return pd.DataFrame(rows)


def test_paired_table_pairs_by_seed_and_clip_per_profile() -> None:
    t = br.paired_table(_rows())
    plc = t[t["figure"] == "PLCMOS"].set_index("profile")
    assert plc.loc["4g", "n"] == 4 and plc.loc["4g", "chromium - aiortc"].value == pytest.approx(0.3)
    assert plc.loc["clean-lan", "chromium - aiortc"].value == pytest.approx(0.0)
    ice = t[t["figure"].str.startswith("ICE")].set_index("profile")
    # Chromium: connected - answer = 90 + seed; aiortc: dtls - answer received = 40 + seed
    assert ice.loc["4g", "chromium"].value == pytest.approx(92.5)
    assert ice.loc["4g", "aiortc"].value == pytest.approx(42.5)
    assert ice.loc["4g", "chromium - aiortc"].value == pytest.approx(50.0)
    sig = t[t["figure"].str.startswith("offer")].set_index("profile")
    assert sig.loc["4g", "chromium"].value == pytest.approx(10.0) and sig.loc["4g", "aiortc"].value == pytest.approx(48.0)


def test_negotiation_table_says_what_was_offered_and_kept() -> None:
    n = br.negotiation_table(_rows()).set_index("caller")
    c = n.loc["chromium"]
    assert c["RED offered"] == "yes" and c["RED in answer"] == "no"
    assert c["NACK offered"] == "no" and c["NACK in answer"] == "no"
    assert c["answer maxaveragebitrate"] == "24000" and c["answer useinbandfec"] == "1" and c["answer ptime"] == "-"
    assert c["payload sent (kbit/s)"] == pytest.approx(22.5) and c["cells"] == 8
    assert n.loc["aiortc", "answer ptime"] == "20"


def test_neteq_table_pairs_browser_and_model_within_each_call() -> None:
    t = br.neteq_table(_rows())
    r = t[(t["profile"] == "4g") & (t["figure"] == "PLCMOS heard")].iloc[0]
    assert r["n"] == 4 and r["browser - model"].value == pytest.approx(-0.2)
    c = t[(t["profile"] == "4g") & (t["figure"] == "concealed (%)")].iloc[0]
    assert c["browser (NetEq)"].value == pytest.approx(2.0) and c["browser - model"].value == pytest.approx(1.0)
    assert math.isnan(t[t["figure"] == "STOI heard"].iloc[0]["browser - model"].value)  # not in these rows


def test_section_renders_only_with_chromium_cells() -> None:
    df = _rows()
    html = browser_section(df)
    assert "id='browser'" in html and "fig-browser" in html and "+0.30" in html
    assert browser_section(df[df["peer"].isna()]) == ""
