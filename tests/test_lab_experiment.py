"""Experiment files: parsing, validation errors naming file/key/allowed values, grid expansion rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from translab.errors import ConfigError
from translab.lab import experiment as ex
from translab.paths import EXPERIMENTS_DIR


@pytest.fixture(autouse=True)
def _names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin the known profile and clip names so these tests do not depend on data/ contents."""
    monkeypatch.setattr(ex, "known_profiles", lambda: ["4g", "clean-lan", "hotel-wifi"])
    monkeypatch.setattr(ex, "known_clips", lambda: ["alpha", "beta"])


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


GOOD = """
name = "t"
description = "a test"
metrics = ["plcmos"]
[defaults]
seed = 3
[[grid]]
transport = ["webrtc", "websocket"]
framing = ["binary", "realtime-json", "twilio-json"]
profile = ["clean-lan", "4g"]
"""


def test_good_file_expands_with_rules(tmp_path: Path) -> None:
    exp = ex.load_experiment(write(tmp_path, GOOD))
    e = ex.expand(exp)
    assert e.product_size == 12
    # webrtc: 3 framings merge to rtp -> 1 per profile; websocket: binary (pcm16 default),
    # realtime-json (pcm16 24k), twilio-json (pcmu 8k) -> 3 per profile
    assert len(e.cells) == 2 * (1 + 3)
    assert e.dropped == {"duplicate": 4}  # webrtc framings merge into "rtp"; nothing dropped
    webrtc = [c for c in e.cells if c["transport"] == "webrtc"]
    assert {c["framing"] for c in webrtc} == {"rtp"} and {c["codec"] for c in webrtc} == {"opus"}
    tw = [c for c in e.cells if c["framing"] == "twilio-json"]
    assert all(c["codec"] == "pcmu" and c["sample_rate"] == 8000 and c["frame_ms"] == 20 for c in tw)
    assert all(c["seed"] == 3 and c["metrics"] == ["plcmos"] and c["clip"] == "alpha" for c in e.cells)
    assert all(not c["fec"] for c in e.cells if c["codec"] != "opus")


def test_contradictions_dropped_and_exclude(tmp_path: Path) -> None:
    exp = ex.from_dict({
        "name": "t", "description": "d",
        "grid": [{"transport": ["webrtc", "websocket"], "codec": ["opus", "pcm16"],
                  "conceal": ["opus-fec", "pcm-plc"], "fec": [True, False]}],
        "exclude": [{"transport": "websocket", "codec": "opus"}],
    })
    cells = exp.cells()
    for c in cells:
        assert not (c["codec"] != "opus" and c["conceal"].startswith("opus-"))  # opus-fec for pcm: no
        assert not (c["codec"] == "opus" and c["conceal"] == "pcm-plc")
        assert not (c["conceal"] == "opus-fec" and not c["fec"])
        assert not (c["transport"] == "webrtc" and c["codec"] != "opus")
        assert not (c["transport"] == "websocket" and c["codec"] == "opus")  # excluded
    assert {(c["transport"], c["codec"], c["conceal"]) for c in cells} == {
        ("webrtc", "opus", "opus-fec"), ("websocket", "pcm16", "pcm-plc")}
    dropped = ex.expand(exp).dropped
    assert dropped["conceal-codec"] > 0 and dropped["webrtc-codec"] > 0 and dropped["exclude"] > 0


@pytest.mark.parametrize("text, key, allowed", [
    ('name="t"\ndescription=""\ncolour = 1\n[[grid]]\nseed=[1]', "colour", "top-level keys"),
    ('name="t"\ndescription=""\n[[grid]]\ntransports=["webrtc"]', "grid[0].transports", "keys transport"),
    ('name="t"\ndescription=""\n[[grid]]\nseed=["one"]', "grid[0].seed", "non-negative integer"),
    ('name="t"\ndescription=""\n[[grid]]\nfec=[1]', "grid[0].fec", "true or false"),
    ('name="t"\ndescription=""\n[[grid]]\nprofile=["moon"]', "grid[0].profile", "4g, clean-lan, hotel-wifi"),
    ('name="t"\ndescription=""\n[[grid]]\nclip=["gamma"]', "grid[0].clip", "alpha, beta"),
    ('name="t"\ndescription=""\n[[grid]]\ntransport=[]', "grid[0].transport", "non-empty list"),
    ('name="t"\ndescription=""\n', "grid", "[[grid]]"),
    ('name="t"\ndescription=""\n[[grid]]\ntransport="webrtc"\ncodec="pcm16"', "grid", "at least one valid"),
    ('name="t"\ndescription=""\nmetrics=["mos"]\n[[grid]]\nseed=1', "metrics", "plcmos"),
    ('name="t"\ndescription=""\n[[grid]]\nbitrate=["fast"]', "grid[0].bitrate", "24k"),
    ('name="t"\ndescription=""\n[[grid]]\nbitrate=[true]', "grid[0].bitrate", "24k"),
    ('name="t"\ndescription=""\n[[grid]]\nbitrate=[24000.5]', "grid[0].bitrate", "24k"),
    # Opus runs at 12 kHz, but CallConfig refuses it (clips are resampled to a media rate): the
    # file must be refused when it is read, not cell by cell at run time
    ('name="t"\ndescription=""\n[[grid]]\nsample_rate=[12000]', "grid[0].sample_rate", "8000, 16000, 24000, 48000"),
    ('name="t"\ndescription=""\n[[grid]]\nmode=["offline"]', "grid[0].mode", "simulate, live"),
    ('name="t"\ndescription=""\n[defaults]\nseed=[-1]\n[[grid]]\ntransport="webrtc"', "grid[0].seed", "0"),
    ('name = [', "toml", "valid TOML"),
])
def test_bad_input_names_file_key_allowed(tmp_path: Path, text: str, key: str, allowed: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        ex.load_experiment(p)
    msg = str(info.value)
    assert str(p) in msg and f"{key}:" in msg and allowed in msg, msg


def test_profile_path_accepted(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text("name='mine'\n")
    exp = ex.load_experiment(write(tmp_path, GOOD.replace('"4g"]', '"mine.toml"]')))
    assert any(c["profile"].endswith("mine.toml") for c in exp.cells())


def test_list_in_defaults_is_a_dimension_of_every_block_lacking_it() -> None:
    exp = ex.from_dict({"name": "t", "description": "", "defaults": {"seed": [1, 2, 3]},
                        "grid": [{"transport": "webrtc"}, {"transport": "websocket", "seed": 9}]})
    got = sorted((c["transport"], c["seed"]) for c in exp.cells())
    assert got == [("webrtc", 1), ("webrtc", 2), ("webrtc", 3), ("websocket", 9)]


def test_bitrate_strings() -> None:
    exp = ex.from_dict({"name": "t", "description": "", "grid": {"bitrate": ["12k", 24000, "32000"]}})
    assert sorted(c["bitrate"] for c in exp.cells()) == [12000, 24000, 32000]


def test_experiment_uses_the_call_definitions() -> None:
    """One parse_bitrate and one list of sample rates: the experiment file accepts exactly what a
    CallConfig accepts (a "1.5k" style bitrate parses the same in both)."""
    from translab import config
    from translab.media.audio import SUPPORTED_RATES

    assert ex.parse_bitrate is config.parse_bitrate
    assert tuple(ex.SAMPLE_RATES) == tuple(SUPPORTED_RATES)
    assert (ex.TRANSPORTS, ex.CODECS, ex.CONCEALS) == (config.TRANSPORTS, config.CODECS, config.CONCEALMENTS)
    exp = ex.from_dict({"name": "t", "description": "", "grid": {"bitrate": ["12.5k"]}})
    assert [c["bitrate"] for c in exp.cells()] == [12500]


def test_unknown_experiment_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="experiment"):
        ex.load_experiment("no-such-experiment")
    # a directory that happens to have an experiment's name is not the experiment file
    (tmp_path / "default").mkdir()
    monkeypatch.chdir(tmp_path)
    assert ex.resolve_path("default") == EXPERIMENTS_DIR / "default.toml"


def test_shipped_experiments_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(EXPERIMENTS_DIR.glob("*.toml"))
    if not files:
        pytest.skip("no experiment files yet")
    monkeypatch.undo()  # validate against the real profiles and clips
    for f in files:
        assert ex.load_experiment(f).cells()


def test_grid_over_the_limit_is_refused_up_front_with_its_size() -> None:
    """Issue 15: a 10^7-cell grid was expanded without limit (1.27 GB after 150 s, even with --dry-run).
    The size comes from the axes (no cell is built), so the refusal is immediate."""
    import time

    from translab.lab import experiment as ex

    big = {"name": "big", "description": "d",
           "grid": [{"seed": list(range(10_000)), "complexity": list(range(10))},
                    {"seed": list(range(10_000)), "expected_loss_pct": list(range(100))}]}
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"grid: '1,100,000 combinations \(100,000 \+ 1,000,000 over 2 "
                       r"block\(s\)\)' is not allowed \(allowed: at most 20,000 combinations"):
        ex.from_dict(big)
    assert time.monotonic() - t0 < 5
    lazy = ex.from_dict(big, check_size=False)
    assert ex.block_sizes(lazy) == [100_000, 1_000_000]
    with pytest.raises(ConfigError, match="at most 20,000"):
        ex.expand(lazy)
    ok = ex.from_dict({"name": "ok", "description": "d", "grid": [{"seed": list(range(ex.MAX_GRID_COMBINATIONS))}]},
                      check_size=False)
    assert ex.check_grid_size(ok) == ex.MAX_GRID_COMBINATIONS


def test_experiment_file_not_utf8_is_one_error(tmp_path) -> None:
    from translab.lab.experiment import load_experiment

    f = tmp_path / "latin1.toml"
    f.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"file: .*latin1.toml' is not allowed \(allowed: a UTF-8 text file "
                       r"\(byte 11 is not UTF-8\)\)"):
        load_experiment(f)
