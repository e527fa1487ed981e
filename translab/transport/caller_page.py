"""The caller page ``translab serve`` shows at ``/``: a browser calls the lab over WebRTC.

getUserMedia -> RTCPeerConnection offer (host candidates, gathered before sending: /offer is one
request, no trickle) -> ``POST /offer`` (JSON) -> answer; the remote track (audio translab sends
back, if any) plays in an ``<audio>`` element, which is what makes Chromium run NetEq on it. The page
shows the connection state and live stats and keeps everything on ``window.translab`` for automation
(translab.transport.chromium reads it):

* ``state``, ``error``, ``milestones`` (name -> ``performance.now()`` ms: start, microphone,
  offer_ready, answer, ice_connected, connected, remote_track, recording);
* ``stats``: a snapshot every ``stats_ms`` (default 500 ms) of the audio ``inbound-rtp``,
  ``outbound-rtp``, ``remote-inbound-rtp``, ``media-playout`` and the selected ``candidate-pair``
  (W3C webrtc-stats dictionaries, as Chromium reports them), ``t`` in ``performance.now()`` ms;
* ``finish()``: takes a last snapshot, hangs up and returns ``{stats, milestones, offer, answer,
  record_rate, record_start_ms, record_b64}`` (``record_b64``: what the page played, PCM16 LE mono
  base64, captured with an AudioWorklet from the remote stream when ``record=1``).

Query parameters: ``autostart=1`` calls at once; ``record=1`` records the played audio;
``processing=1`` keeps the browser's echo cancellation, noise suppression and gain control on
(default off, so the microphone's signal is sent as captured); ``server=http://HOST:PORT``
calls another translab serve (cross-origin: that server must allow this page's origin);
``stats_ms`` sets the stats period.
"""

from __future__ import annotations

__all__ = ["caller_page"]

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>translab caller</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 46em; padding: 0 1em; }
button { font-size: 1em; padding: .3em 1.2em; }
#state { margin-left: 1em; font-weight: bold; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { padding: .15em .8em; border-bottom: 1px solid #ddd; text-align: right; }
th { text-align: left; font-weight: normal; color: #444; }
</style></head>
<body>
<h1>translab caller</h1>
<p>Calls this lab over WebRTC. Your microphone's audio crosses the emulated network
(profile <b>__PROFILE__</b>, seed __SEED__) to translab, which analyses it when the call ends;
audio translab sends back (__REPLY__) plays below and crosses the same network the other way.</p>
<p><button id="call">Call</button> <button id="hangup" disabled>Hang up</button><span id="state">idle</span></p>
<audio id="remote" autoplay controls></audio>
<table><tbody id="stats"></tbody></table>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const server = params.get("server") || "";
const T = window.translab = { state: "idle", error: null, milestones: {}, stats: [], chunks: [],
                              record_rate: 0, record_start_ms: null, offer: null, answer: null };
let pc = null, timer = null, ctx = null, mic = null;

function mark(name) { if (!(name in T.milestones)) T.milestones[name] = performance.now(); }
function setState(s) { T.state = s; document.getElementById("state").textContent = s; }

async function startRecording(stream) {
  ctx = new AudioContext({ sampleRate: 48000 });
  const code = "class Rec extends AudioWorkletProcessor { process(inputs) { const x = inputs[0][0];" +
    " if (x) this.port.postMessage(x.slice(0)); return true; } } registerProcessor('rec', Rec);";
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([code], { type: "text/javascript" })));
  const node = new AudioWorkletNode(ctx, "rec");
  node.port.onmessage = ev => { if (T.record_start_ms === null) T.record_start_ms = performance.now(); T.chunks.push(ev.data); };
  const mute = ctx.createGain();
  mute.gain.value = 0;
  ctx.createMediaStreamSource(stream).connect(node);
  node.connect(mute);
  mute.connect(ctx.destination);
  T.record_rate = ctx.sampleRate;
  mark("recording");
}

async function poll() {
  if (!pc) return;
  const report = await pc.getStats();
  const snap = { t: performance.now() };
  report.forEach(s => {
    if (["inbound-rtp", "outbound-rtp", "remote-inbound-rtp"].includes(s.type) && s.kind === "audio") snap[s.type] = s;
    else if (s.type === "media-playout") snap[s.type] = s;
    else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") snap[s.type] = s;
  });
  T.stats.push(snap);
  render(snap);
}

function render(snap) {
  const rows = [];
  const i = snap["inbound-rtp"] || {}, o = snap["outbound-rtp"] || {}, p = snap["candidate-pair"] || {};
  const emitted = i.jitterBufferEmittedCount || 0, total = i.totalSamplesReceived || 0;
  rows.push(["sent (packets)", o.packetsSent], ["received (packets)", i.packetsReceived],
            ["lost (packets)", i.packetsLost],
            ["concealed", total ? (100 * (i.concealedSamples || 0) / total).toFixed(2) + " %" : "-"],
            ["jitter buffer delay", emitted ? (1000 * i.jitterBufferDelay / emitted).toFixed(1) + " ms" : "-"],
            ["round trip", p.currentRoundTripTime !== undefined ? (1000 * p.currentRoundTripTime).toFixed(1) + " ms" : "-"]);
  document.getElementById("stats").innerHTML =
    rows.map(([k, v]) => "<tr><th>" + k + "</th><td>" + (v === undefined ? "-" : v) + "</td></tr>").join("");
}

async function call() {
  try {
    document.getElementById("call").disabled = true;
    mark("start");
    setState("microphone");
    const processing = params.get("processing") === "1";
    mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: processing,
      noiseSuppression: processing, autoGainControl: processing } });
    mark("microphone");
    pc = new RTCPeerConnection();  // no STUN/TURN: the lab and the browser share a machine
    pc.onconnectionstatechange = () => { setState(pc.connectionState); if (pc.connectionState === "connected") mark("connected"); };
    pc.oniceconnectionstatechange = () => { if (pc.iceConnectionState === "connected") mark("ice_connected"); };
    pc.ontrack = ev => {
      mark("remote_track");
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      const audio = document.getElementById("remote");
      audio.srcObject = stream;
      audio.play().catch(e => { T.play_error = String(e); });
      if (params.get("record") === "1") startRecording(stream).catch(e => { T.error = "recording: " + e; });
    };
    for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(resolve => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") resolve(); };
    });
    mark("offer_ready");
    setState("signalling");
    T.offer = pc.localDescription.sdp;
    const r = await fetch(server + "/offer", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }) });
    if (!r.ok) throw new Error("POST /offer: " + r.status + " " + (await r.text()).trim());
    const answer = await r.json();
    mark("answer");
    T.answer = answer.sdp;
    await pc.setRemoteDescription(answer);
    document.getElementById("hangup").disabled = false;
    timer = setInterval(() => poll().catch(() => {}), +(params.get("stats_ms") || 500));
  } catch (e) {
    T.error = String(e);
    setState("error: " + e);
  }
}

function pcm16Base64(chunks) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Int16Array(n);
  let k = 0;
  for (const c of chunks) for (let j = 0; j < c.length; j++) {
    const v = Math.max(-1, Math.min(1, c[j]));
    out[k++] = v < 0 ? v * 32768 : v * 32767;
  }
  const bytes = new Uint8Array(out.buffer);
  let s = "";
  for (let j = 0; j < bytes.length; j += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(j, j + 0x8000));
  return btoa(s);
}

async function finish() {
  if (timer !== null) clearInterval(timer);
  timer = null;
  await poll().catch(() => {});
  if (pc) pc.close();
  if (mic) mic.getTracks().forEach(t => t.stop());
  if (ctx) await ctx.close();
  setState("ended");
  document.getElementById("hangup").disabled = true;
  return { stats: T.stats, milestones: T.milestones, offer: T.offer, answer: T.answer, error: T.error,
           record_rate: T.record_rate, record_start_ms: T.record_start_ms, record_b64: pcm16Base64(T.chunks) };
}
T.finish = finish;

document.getElementById("call").onclick = call;
document.getElementById("hangup").onclick = () => finish();
if (params.get("autostart") === "1") call();
</script>
</body></html>
"""


def caller_page(profile: str, seed: int, reply: str) -> str:
    """The page's HTML with the server's profile, seed and what it sends back filled in."""
    import html

    return (_PAGE.replace("__PROFILE__", html.escape(str(profile)))
            .replace("__SEED__", html.escape(str(seed)))
            .replace("__REPLY__", html.escape({"none": "none", "echo": "your own audio, echoed",
                                               "clip": "a speech clip"}.get(reply, reply))))
