"""Loss protection and adaptation for the WebRTC path: audio NACK + RTX (RFC 4588), RED (RFC 2198,
Chrome's ``red/48000`` for Opus) and an adaptive bitrate / FEC controller modelled on libwebrtc's
audio network adaptor.

Placement in the layers: this package sits above ``media`` / ``link`` / ``playout`` and below
``transport`` / ``emulate`` / the call engines. Its cores (:mod:`.red`, :mod:`.rtx`, :mod:`.nack`,
:mod:`.abr`) import only the base layer (errors): they are sans-I/O, take time as arguments and never
read a clock, so a live transport can drive them the same way the simulator does. :mod:`.sim` (the
simulated uplink with feedback, which needs the Opus encoder, the link models and the receiver's
delay estimate) and :mod:`.receive` (the receiver's depacketiser and the row figures) are the only
modules that import the layers below.
"""
