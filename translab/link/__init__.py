"""Seeded network impairment models (delay, loss, duplication, capacity, outages), the TCP delivery
model for stream transports, named profiles, and the NAT model. Pure: time and RNG are passed in."""
