"""Live backends that put link models on real packets: in-process relays on loopback, and (later)
network namespaces joined by TUN devices."""
