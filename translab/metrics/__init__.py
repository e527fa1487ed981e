"""Figures a caller lives with: mouth-to-ear latency, payload and wire bandwidth under a stated
header model, speech quality (PLCMOS, PESQ, STOI, ViSQOL), and the ITU-T G.107 E-model."""
