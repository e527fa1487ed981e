"""Make the small synthetic sample traces in this folder (run from the repository root:
``.venv/bin/python data/traces/make_samples.py``). Deterministic (fixed seeds).

* ``plc-sample.txt``: 3000 lines (60 s of 20 ms packets) in the Microsoft PLC Challenge loss-trace
  format (1 = lost). Synthetic: netem 4-state model, about 3 % loss with bursts; NOT a recorded call.
* ``cellular-sample.mahimahi``: 20 s of mahimahi delivery opportunities (one ms timestamp per
  1500-byte opportunity) whose rate swings between about 0.5 and 6 Mbit/s every few seconds.
  Synthetic; NOT a drive-test recording.
"""

from pathlib import Path

import numpy as np

from translab.link.loss import FourStateLoss

HERE = Path(__file__).resolve().parent


def plc_sample() -> None:
    n = 3000
    model = FourStateLoss(p13=0.008, p31=0.25, p32=0.05, p23=0.2, p14=0.01)
    t = np.arange(n) * 0.02
    kept, _ = model.apply(t, np.full(n, 100), np.random.default_rng(20240607))
    lost = np.ones(n, dtype=int)
    lost[kept] = 0
    (HERE / "plc-sample.txt").write_text("".join(f"{x}\n" for x in lost))


def cellular_sample() -> None:
    rng = np.random.default_rng(7)
    stamps: list[int] = []
    for second in range(20):
        mbps = float(np.clip(3.0 + 2.5 * np.sin(second / 3.0) + rng.normal(0, 0.5), 0.5, 6.0))
        per_ms = mbps * 1e6 / 8 / 1500 / 1000  # opportunities per millisecond
        n = int(round(per_ms * 1000))
        stamps += sorted(int(second * 1000 + x) + 1 for x in rng.uniform(0, 999, n))
    (HERE / "cellular-sample.mahimahi").write_text("".join(f"{s}\n" for s in stamps))


if __name__ == "__main__":
    plc_sample()
    cellular_sample()
