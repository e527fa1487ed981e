"""One schema for allowed values (translab.config): the CLI, experiment files, serve's query parsing
and the Python API accept and refuse the same values, with errors naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from translab import config as C
from translab.config import CallConfig, NetnsConfig
from translab.errors import ConfigError
from translab.lab import experiment as ex


def _exp(grid: dict, base: Path | None = None) -> ex.Experiment:
    return ex.from_dict({"name": "t", "description": "d", "metrics": [], "grid": [grid]}, base_dir=base)


def test_fixed_playout_with_decimals_is_accepted_everywhere() -> None:
    assert CallConfig(playout="fixed:62.5").resolved().playout == "fixed:62.5"
    cells = _exp({"playout": "fixed:62.5"}).cells()
    assert cells[0]["playout"] == "fixed:62.5"
    for bad in ("fixed:", "fixed:abc", "adaptiv"):
        with pytest.raises(ConfigError, match="playout"):
            CallConfig(playout=bad).resolved()
        with pytest.raises(ConfigError, match="playout"):
            _exp({"playout": bad})


def test_bitrate_strings_are_parsed_by_the_python_api() -> None:
    assert CallConfig(bitrate="24k").bitrate == 24000 and CallConfig(bitrate="1.5M").bitrate == 1_500_000
    with pytest.raises(ConfigError, match="bitrate"):
        CallConfig(bitrate="fast")
    with pytest.raises(ConfigError, match="bitrate"):
        CallConfig(bitrate="1k").resolved()


def test_twilio_json_implies_pcmu_and_refuses_an_explicit_pcm16() -> None:
    r = CallConfig(transport="websocket", framing="twilio-json").resolved()
    assert (r.codec, r.sample_rate, r.frame_ms) == ("pcmu", 8000, 20)
    assert CallConfig(transport="websocket", framing="realtime-json").resolved().sample_rate == 24000
    with pytest.raises(ConfigError, match="twilio-json carries pcmu"):
        CallConfig(transport="websocket", framing="twilio-json", codec="pcm16").resolved()


def test_netns_options_are_typed_and_checked() -> None:
    assert C.NETNS_FIELDS == {"caller_nat": "none", "callee_nat": "none", "firewall": "open",
                              "callee_firewall": "open", "ice": "none", "relay_only": False}
    with pytest.raises(ConfigError, match="caller_nat"):
        NetnsConfig(caller_nat="cone")
    with pytest.raises(ConfigError, match="relay_only"):
        NetnsConfig(relay_only=True, ice="stun")


def test_experiment_and_cli_derive_their_choices_from_config() -> None:
    from translab.media.audio import SUPPORTED_RATES
    from translab.transport.websocket import StreamSpec

    assert ex.FRAMINGS == C.FRAMINGS and ex.SAMPLE_RATES == C.SAMPLE_RATES == SUPPORTED_RATES
    assert ex.PLAYOUTS == C.PLAYOUTS and ex.NAT_CHOICES == C.NAT_CHOICES and ex.QUALITY_METRICS == C.METRICS
    assert StreamSpec.from_path("/?framing=twilio-json").codec == "pcmu"
    with pytest.raises(ConfigError, match="codec"):
        StreamSpec.from_path("/?codec=flac")


def test_profile_path_errors_name_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        _exp({"profile": "nope/missing.toml"}, base=tmp_path)
    from translab.link.profiles import load_profile

    with pytest.raises(ConfigError, match="working directory"):
        load_profile("nope/missing.toml")


def test_simulate_json_prints_exactly_one_object(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "translab.cli", "simulate", "--transport", "websocket",
                        "--framing", "twilio-json", "--metrics", "none", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["codec"] == "pcmu"
