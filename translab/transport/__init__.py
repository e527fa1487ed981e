"""Real transports: WebRTC through aiortc and WebSocket through websockets, plus the pure framings
(binary PCM/Opus, realtime-json, twilio-json) both the simulator and live calls use."""
