"""`translab call --peer chromium`: the browser peer's part of the call command (options are
registered by translab.commands.call, which hands over here; the engine is translab.call.browser)."""

from __future__ import annotations

import argparse
import sys

from translab.commands.simulate import format_summary
from translab.config import CallConfig
from translab.jsonio import dumps


def run(args: argparse.Namespace, cfg: CallConfig) -> int:
    """``translab call --peer chromium``: run, print the summary (or ``--json``: exactly one JSON
    object), write ``--out``. Exit 0 when the call succeeded, 1 when it failed, 2 when a browser
    cannot run here."""
    from translab.call import run_call
    from translab.call.browser import BrowserEngine, check_browser_config
    from translab.errors import ConfigError
    from translab.transport.chromium import unavailable_reason

    if args.backend != "inprocess":
        raise ConfigError("--peer", "chromium", "only with --backend inprocess")
    if args.echo or args.deflate:
        raise ConfigError("--echo" if args.echo else "--deflate", True, "not with --peer chromium")
    cfg = check_browser_config(cfg)
    reason = unavailable_reason()
    if reason:
        print(f"translab call --peer chromium: {reason}", file=sys.stderr)
        return 2

    def progress(frac: float) -> None:
        if not args.quiet:
            print(f"\rcall: {frac:4.0%}", end="", file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"call: headless Chromium <-> translab over {cfg.profile} (seed {cfg.seed}), starting the browser ...",
              file=sys.stderr, flush=True)
    engine = BrowserEngine(connect_timeout_s=max(args.connect_timeout, 20.0), progress=progress)
    result = run_call(cfg, engine, args.out)
    if not args.quiet:
        print("", file=sys.stderr)
    s = result.summary
    if args.json:
        print(dumps(s, indent=2, sort_keys=True))
        return 0 if s.get("status") == "ok" else 1
    if s.get("status") != "ok":
        print(f"call failed: {s.get('reason')}")
    else:
        print("uplink (Chromium -> translab, translab's playout):")
        print("  " + format_summary(s).replace("\n", "\n  "))
        print(f"  browser sent {s.get('browser_out_packetsSent')} packets, target "
              f"{(s.get('browser_out_targetBitrate') or 0) / 1000:g} kbit/s; answer {s.get('browser_answer_opus_fmtp')}")
        order = ("page_loaded", "microphone", "offer_ready", "answer", "ice_connected", "connected")
        print("  setup (ms since start): " + ", ".join(
            f"{k} {s[f'setup_{k}_ms']:.0f}" for k in order if f"setup_{k}_ms" in s))
        if "down_neteq_concealed_share" in s:
            def pct(k: str) -> str:
                v = s.get(k)
                return "n/a" if v is None or v != v else f"{v:.2%}"

            print("downlink (translab -> Chromium): NetEq vs translab's model on the same arrivals")
            print(f"  loss {pct('down_loss_rate')}, concealed {pct('down_neteq_concealed_share')} vs "
                  f"{pct('down_model_concealed_share')}, mean buffer delay "
                  f"{s['down_neteq_mean_buffer_delay_ms']:.1f} vs {s['down_model_mean_buffer_delay_ms']:.1f} ms, "
                  f"accel {s['down_neteq_accel_samples']:.0f} vs {s['down_model_accel_samples']:.0f}, decel "
                  f"{s['down_neteq_decel_samples']:.0f} vs {s['down_model_decel_samples']:.0f} samples")
            print(f"  heard in the browser: PLCMOS {s.get('down_browser_plcmos', float('nan')):.2f}, "
                  f"PESQ-WB {s.get('down_browser_pesq_wb', float('nan')) or float('nan'):.2f}, "
                  f"STOI {s.get('down_browser_stoi', float('nan')):.3f}")
    print(f"wrote {args.out}/summary.json and {args.out}/down/ ({result.wall_s:.1f} s)", file=sys.stderr)
    return 0 if s.get("status") == "ok" else 1
