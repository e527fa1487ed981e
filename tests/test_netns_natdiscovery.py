"""RFC 5780 check from outside the code: coturn's turnutils_natdiscovery, run in the LAN namespace
against coturn with two public addresses, reports the configured mapping and filtering."""

from __future__ import annotations

import pytest

from translab.emulate.netns.natdiscovery import parse_report
from translab.link.nat import AD, APD, EI, PRESETS

SAMPLE = """
-= Mapping Behavior Discovery =-
========================================
NAT with Endpoint Independent Mapping!
========================================
-= Filtering Behavior Discovery =-
NAT with Address and Port Dependent Filtering!
"""


def test_parse_report() -> None:
    assert parse_report(SAMPLE) == {"mapping": EI, "filtering": APD}
    assert parse_report("NAT with Address Dependent Filtering!") == {"mapping": None, "filtering": AD}
    assert parse_report("") == {"mapping": None, "filtering": None}


CASES = [(name, name, cfg.mapping, cfg.filtering) for name, cfg in PRESETS.items()] + [
    ("address-dependent-mapping", {"mapping": AD, "filtering": EI}, AD, EI),
]


@pytest.mark.netns
@pytest.mark.coturn
@pytest.mark.parametrize("label, nat, mapping, filtering", CASES, ids=[c[0] for c in CASES])
def test_natdiscovery_reports_configured_behaviour(tmp_path, label, nat, mapping, filtering) -> None:
    from translab.emulate.coturn import Coturn
    from translab.emulate.netns.lab import Lab, LabConfig
    from translab.emulate.netns.natdiscovery import discover

    with Lab(LabConfig(sides=("a",), nat={"a": nat}), run_dir=tmp_path) as lab:
        with Coturn(lab, stun_only=True):
            res = discover(lab, "a")
    assert (res["mapping"], res["filtering"]) == (mapping, filtering), res["report"]


@pytest.mark.netns
@pytest.mark.coturn
@pytest.mark.parametrize("hairpinning", [True, False])
def test_natdiscovery_sees_hairpinning_as_configured(tmp_path, hairpinning) -> None:
    from translab.emulate.coturn import Coturn
    from translab.emulate.netns.lab import Lab, LabConfig
    from translab.emulate.netns.natdiscovery import discover_hairpin

    nat = {"preset": "full-cone", "hairpinning": hairpinning}
    with Lab(LabConfig(sides=("a",), nat={"a": nat}), run_dir=tmp_path) as lab:
        with Coturn(lab, stun_only=True):
            assert discover_hairpin(lab, "a") is hairpinning
