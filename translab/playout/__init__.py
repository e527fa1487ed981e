"""The receiver: jitter buffers (fixed, adaptive, elastic, aiortc-stock), concealment (Opus PLC/FEC,
zero, repeat, G.711 Appendix I style PCM PLC) and W3C webrtc-stats receiver counters."""

from translab.playout.play import play
from translab.playout.receiver import POLICIES, PlayoutResult, parse_policy

__all__ = ["POLICIES", "PlayoutResult", "parse_policy", "play"]
