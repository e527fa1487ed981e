"""The operations files (ops/prometheus, ops/grafana) are valid and name only metrics translab
exports: `promtool check rules` / `promtool test rules` where promtool is installed (Debian's
`prometheus` package; or PROMTOOL=/path), and a parser test always."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from translab.metrics.prometheus import metric_names

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "translab-probe.json"
_NAME = re.compile(r"\btranslab_(?:probe|serve)_[a-z_]+\b")
EXPORTED = metric_names("translab_probe") | metric_names("translab_serve")


def _alert_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    d = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in d["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_exported_names_follow_prometheus_conventions() -> None:
    assert "translab_probe_setup_seconds_bucket" in EXPORTED
    assert "translab_probe_failures_total" in EXPORTED and "translab_serve_calls_total" in EXPORTED
    for name in EXPORTED:
        assert re.fullmatch(r"translab_(probe|serve)_[a-z_]+", name), name
        assert not re.search(r"_(ms|milliseconds|percent)\b", name), name


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_named_is_one_translab_exports(source: str) -> None:
    exprs = _alert_exprs() if source == "alerts" else _dashboard_exprs()
    named = {n for e in exprs for n in _NAME.findall(e)}
    assert len(named) >= 8
    assert named <= EXPORTED, sorted(named - EXPORTED)


def test_alert_rules_have_the_fields_prometheus_needs() -> None:
    doc = yaml.safe_load(ALERTS.read_text())
    names = [r["alert"] for g in doc["groups"] for r in g["rules"]]
    assert len(names) == len(set(names))
    for g in doc["groups"]:
        for r in g["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r
            assert r["labels"]["severity"] in ("page", "ticket")
            assert r["annotations"]["summary"]
            assert r["expr"].count("(") == r["expr"].count(")")


def test_dashboard_panels_have_units_and_unique_ids() -> None:
    d = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for p in d["panels"]:
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        assert p["targets"], p["title"]


def _promtool() -> str:
    own = ROOT / ".tools" / "bin" / "promtool"  # where ./lab puts it
    tool = os.environ.get("PROMTOOL") or shutil.which("promtool") or (str(own) if own.is_file() else None)
    if not tool:
        pytest.skip("promtool not installed (./lab setup unpacks it from Debian's prometheus package)")
    return tool


def test_promtool_checks_the_rules_and_config() -> None:
    tool = _promtool()
    for args in (["check", "rules", str(ALERTS)], ["check", "config", str(ALERTS.parent / "prometheus.yml")]):
        proc = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    tool = _promtool()
    proc = subprocess.run([tool, "test", "rules", "alerts_test.yml"], cwd=ALERTS.parent,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
