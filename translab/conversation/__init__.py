"""Voice-agent conversations: the OpenAI Realtime and Twilio Media Streams events (sans-I/O), a
realtime-model stand-in (real Silero VAD, seeded think time, streamed pre-rendered replies), and
two-way calls through the article's topologies with per-turn latency budgets: simulated
(``simulate``) or live through the in-process emulator (``live``, ``gateway``, ``twilio``), one analysis."""
