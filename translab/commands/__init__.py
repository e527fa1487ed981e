"""One module per ``translab`` subcommand: argument parsing and printing only; the work is done by
the rooms (media, link, playout, metrics, lab, ...)."""
