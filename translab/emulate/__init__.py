"""Live backends that put link models on real packets. In-process (no root): ``emulator`` (one call's
network), ``datagram`` (aioice sockets behind the UDP links), ``tcp_relay`` (a byte stream through the
TCP delivery model), ``scheduler`` (timerfd deadline releases), ``pcap`` (what was forwarded)."""
