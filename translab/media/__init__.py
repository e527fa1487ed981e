"""Speech clips, PCM framing and resampling, G.711, and Opus through the libopus C API.
Everything here is pure computation on arrays and bytes (no sockets, no clocks)."""
