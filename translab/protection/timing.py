"""An endpoint's own time in a protected WebRTC call: what the simulator
(:mod:`translab.protection.sim`) assumes and the live call (:mod:`translab.transport.webrtc`) keeps
to, so that both put every datagram on the wire at the same moment.

- **Media** enter the wire on the capture grid: packet k at its capture time (the moment its last
  sample is captured), as everywhere in translab (the encoder's own time is not modelled). The live
  sender's track hands each packet over :data:`ENCODE_LEAD_S` early and the emulator holds it until
  its capture time (:func:`translab.emulate.datagram.launch_at`); so an encoder reconfigured during
  the call (ABR, measured-loss FEC) encodes each packet with the settings in force ``ENCODE_LEAD_S``
  before its capture time, live and simulated.
- **Reactions** enter the wire :data:`REACTION_S` after what caused them: an RTCP NACK after the
  arrival of the packet that revealed the loss, a retransmission after the NACK's arrival, an RR
  answering an SR after the SR's arrival, a periodic SR or RR (built from the statistics at its
  scheduled time) after that time, an early SR after the media packet it follows. The live endpoint
  names that launch time for each datagram it sends and the emulator holds it until then; the host's
  own processing (about 1 ms of Python per step: SRTP, aiortc's RTCP handling) must fit inside it.
  A datagram the host hands over later still leaves at once and is counted
  (``host_late_launches``).

Why a stated reaction time and not the host's: the adaptive jitter buffer times arrivals on
NetEq's 10 ms tick, and the NACK rule waits for a retransmission only while the time to play exceeds
the RTT, so a retransmission arriving 1 ms later can fall into the next tick and change the buffer's
target and which packets are recovered (issue 13: the host's ~2 ms on the NACK loop moved live loss
after recovery by up to 1.3 pp against a simulation that reacted in zero time). libwebrtc's own
reaction is not zero either: its sender resends through the pacer, which runs every 5 ms.
"""

from __future__ import annotations

#: the time (s) an endpoint takes from an event (a packet's arrival, a report's scheduled time) to
#: the datagram it sends in reaction entering the wire. 3 ms: the live host's Python work per step is
#: about 1 ms at the median; with 2 ms, 2 of 96 live calls (the grid of translab.bench.protection_live,
#: run twice) differed from their simulation, both with a datagram handed over late; with 3 ms, none of 48
REACTION_S = 0.003
#: how long (s) before a packet's capture time a sender that encodes during the call takes the
#: encoder settings in force and starts encoding it (the live sender's head start)
ENCODE_LEAD_S = 0.005
