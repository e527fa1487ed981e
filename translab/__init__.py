"""translab: measure WebRTC vs WebSocket voice transport under emulated bad networks.

Rooms: media (clips, codecs), link (impairment models), emulate (live backends), transport (aiortc,
websockets), playout (jitter buffers, concealment), metrics, lab (experiments), report.
"""

__version__ = "0.1.0"
