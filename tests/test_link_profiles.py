"""Profiles: every shipped profile loads; user TOML files; clear errors; `translab profiles`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from translab.cli import main
from translab.errors import ConfigError
from translab.link.profiles import list_profiles, load_profile, profile_names

REQUIRED = ["clean-lan", "colocated", "broadband", "transatlantic", "4g", "4g-handoff", "hotel-wifi", "pstn-bridge", "satellite"]


def test_required_profiles_exist_with_description_and_source() -> None:
    names = profile_names()
    for n in REQUIRED:
        assert n in names
    for p in list_profiles():
        assert p.description and "\n" not in p.description
        assert p.source and "\n" not in p.source
        for d in ("up", "down"):
            assert len(p.chain(d)) >= 1


def test_chain_is_fresh_each_call() -> None:
    p = load_profile("4g")
    assert p.chain("up") is not p.chain("up")
    assert p.chain("up").models[0] is not p.chain("up").models[0]


def test_unknown_profile_lists_names() -> None:
    with pytest.raises(ConfigError) as e:
        load_profile("moon-base")
    assert e.value.field == "profile"
    for n in REQUIRED:
        assert n in e.value.allowed


GOOD = """
description = "test profile"
source = "assumption"
[up]
delay = { base_ms = 20, jitter_ms = 5, distribution = "pareto" }
loss = { model = "gilbert-elliott", loss_percent = 2, avg_burst_length = 2 }
[down]
loss = { model = "trace", path = "mytrace.txt" }
outage = [{ start_s = 1, duration_s = 0.1 }, { start_s = 5, duration_s = 0.2, period_s = 7 }]
"""


def test_user_toml_file_works_like_a_name(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(GOOD)
    (tmp_path / "mytrace.txt").write_text("0\n1\n")  # found beside the profile
    p = load_profile(str(f))
    assert p.name == "mine" and p.source == "assumption"
    assert [type(m).__name__ for m in p.chain("up")] == ["GilbertElliottLoss", "Delay"]
    assert [type(m).__name__ for m in p.chain("down")] == ["Outage", "Outage", "TraceLoss"]
    assert main(["profiles", str(f)]) == 0


@pytest.mark.parametrize(
    "edit, field",
    [
        (("base_ms = 20", "base_ms = -1"), "delay.base_ms"),
        (('distribution = "pareto"', 'distribution = "cauchy"'), "delay.distribution"),
        (("loss_percent = 2, avg_burst_length = 2", "loss_percent = 50, avg_burst_length = 0.5"), "loss.avg_burst_length"),
        (('model = "gilbert-elliott", loss_percent = 2, avg_burst_length = 2', 'model = "bernoulli", p = 1.2'), "loss.p"),
        (('model = "gilbert-elliott", loss_percent = 2, avg_burst_length = 2', 'model = "markov"'), ".model"),
        (("jitter_ms = 5,", "jitter_ms = 5, jitter_corr = 25,"), "delay.jitter_corr"),
        (('source = "assumption"', 'source = "assumption"\ncolour = "red"'), "colour"),
        (("[down]", "[down]\nbandwidth = 5"), "down.bandwidth"),
        (('path = "mytrace.txt"', 'path = "nosuchtrace.txt"'), "trace"),
        (("duration_s = 0.2, period_s = 7", "duration_s = 8, period_s = 7"), "outage.duration_s"),
        (("duration_s = 0.2, period_s = 7", "duration_s = 0.2, period_s = 7, start_spread_s = 6.9"),
         "outage.start_spread_s"),
    ],
)
def test_bad_profile_names_field(tmp_path: Path, edit: tuple[str, str], field: str) -> None:
    f = tmp_path / "bad.toml"
    assert edit[0] in GOOD
    f.write_text(GOOD.replace(edit[0], edit[1]))
    (tmp_path / "mytrace.txt").write_text("0\n1\n")
    with pytest.raises(ConfigError) as e:
        load_profile(f)
    assert field in e.value.field, str(e.value)


def test_malformed_trace_referenced_by_profile_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(GOOD)
    (tmp_path / "mytrace.txt").write_text("0\n1\n0\nlost\n")
    with pytest.raises(ConfigError) as e:
        load_profile(f)
    assert e.value.field == "line 4"


def test_missing_description_and_direction(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('source = "x"\n[up]\n[down]\n')
    with pytest.raises(ConfigError) as e:
        load_profile(f)
    assert e.value.field.endswith("description")
    f.write_text('description = "d"\nsource = "x"\n[up]\n')
    with pytest.raises(ConfigError) as e:
        load_profile(f)
    assert e.value.field.endswith("down")
    f.write_text("description = \n")
    with pytest.raises(ConfigError):
        load_profile(f)


def test_cli_lists_profiles_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    for n in REQUIRED:
        assert f"\n{n}: " in "\n" + out
    assert "source:" in out and "up:" in out and "down:" in out
    assert main(["profiles", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in data} >= set(REQUIRED)
    sat = next(d for d in data if d["name"] == "satellite")
    assert sat["up"]["delay"]["base_ms"] == 280
    assert {"name", "description", "source", "up", "down", "summary"} <= set(sat)


def test_cli_unknown_profile_is_one_line_exit_2() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "translab.cli", "profiles", "nowhere"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "clean-lan" in r.stderr


def test_handoff_profile_loses_what_is_sent_in_the_blackout() -> None:
    import numpy as np

    from translab.link.profiles import direction_rngs, scheduled_windows

    p = load_profile("4g-handoff")
    t = np.arange(1500) * 0.02  # 30 s of 20 ms packets
    idx, arr = p.chain("up").apply(t, np.full(t.size, 120), direction_rngs(3)["up"])
    sent = t[idx]
    windows = scheduled_windows(p, 3, 30.0)
    assert len(windows) == 3
    for k, (a, b) in enumerate(windows):
        assert 1.0 + 10 * k <= a < 5.0 + 10 * k and b == pytest.approx(a + 0.3)
        assert not np.any((sent >= a) & (sent < b))
        assert np.sum((t >= a) & (t < b)) >= 14  # and those packets were sent, so lost there
    assert np.all(np.diff(arr) >= 0)  # the profile does not reorder
    # Pareto-normal deviates are >= (-4 + 3 * (-2/3)) / 4 = -1.5, so delay >= 35 - 1.5 * 10 ms.
    assert np.all(arr - sent >= 0.035 - 1.5 * 0.010 - 1e-12)


def test_handoff_times_are_seeded_the_same_both_ways_and_differ_across_seeds() -> None:
    import numpy as np

    from translab.link.profiles import direction_rngs, scheduled_windows

    p = load_profile("4g-handoff")
    starts = [scheduled_windows(p, seed, 10.0)[0][0] for seed in range(1, 11)]
    assert len(set(starts)) == 10 and all(1.0 <= s < 5.0 for s in starts)
    assert max(starts) - min(starts) > 2.0  # spread over the 4 s range, not bunched
    assert [scheduled_windows(p, seed, 10.0)[0][0] for seed in range(1, 11)] == starts  # same seed, same time
    assert scheduled_windows(p, 4, 30.0, "down") == scheduled_windows(p, 4, 30.0, "up")  # one handoff
    # what the chains actually drop agrees with the listed windows, in both directions
    t = np.arange(500) * 0.02
    for d in ("up", "down"):
        (a, b), = scheduled_windows(p, 4, 10.0, d)
        idx, _ = p.chain(d).apply(t, np.full(t.size, 120), direction_rngs(4)[d])
        gone = np.setdiff1d(np.arange(t.size), idx)
        inside = np.flatnonzero((t >= a) & (t < b))
        assert set(inside) <= set(gone) and len(gone) - len(inside) < 20  # the rest: 0.5-1 % random loss


def test_describe_reports_long_run_loss() -> None:
    assert "long-run loss 1 %" in load_profile("4g").describe("up")
