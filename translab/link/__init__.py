"""Seeded network impairment models (delay, loss, duplication, capacity, outages), the TCP delivery
model for stream transports, named profiles, and the NAT model. Pure: time and RNG are passed in."""

from __future__ import annotations

import importlib
from typing import Any

# Public names, importable as ``from translab.link import LinkChain`` (loaded on first use, so that
# importing one submodule, e.g. the NAT model, does not pull in scipy or pandas).
_EXPORTS: dict[str, str] = {
    "LinkChain": "chain",
    "Delay": "delay",
    "BernoulliLoss": "loss",
    "GilbertElliottLoss": "loss",
    "FourStateLoss": "loss",
    "NoLoss": "loss",
    "TraceLoss": "loss_trace",
    "Duplication": "duplication",
    "CapacityQueue": "capacity",
    "TraceCapacity": "capacity",
    "Outage": "outage",
    "TcpDeliveryModel": "tcp",
    "TcpDelivery": "tcp",
    "Profile": "profiles",
    "load_profile": "profiles",
    "list_profiles": "profiles",
    "direction_rngs": "profiles",
    "scheduled_windows": "profiles",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"translab.link.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'translab.link' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
