// rtlayer talk page: the official browser WebRTC flow against the embedded server, no build step.
//
// 1. POST /v1/realtime/client_secrets -> an ephemeral "ek_" key (the real key never reaches a page).
// 2. getUserMedia (browser processing off, so the level the server hears is the microphone's own),
//    RTCPeerConnection, the "oai-events" data channel, an SDP offer.
// 3. POST /v1/realtime/calls (Content-Type: application/sdp, Authorization: Bearer ek_...) -> the
//    SDP answer; the call id is the last segment of the Location header.
// Events arrive as JSON on the data channel; the answer's audio plays on the remote track.
// window.talk exposes the state (for tests and the console); ?autostart=1 starts on load;
// ?session={...} configures the session the ephemeral key opens.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_LOG_LINES = 400;
const GATHER_WAIT_MS = 2000;

const talk = {
  status: "idle",
  callId: null,
  error: null,
  events: [],          // event types received, in order (bounded)
  eventCounts: {},     // type -> count
  eventsReceived: 0,
  pc: null,
  dc: null,
  mic: null,
  muted: false,
  activeResponse: null, // id of the response being generated, for interrupt
  outputLevelMax: 0,   // highest level seen on the remote track by the analyser (0..1)
  inputLevelMax: 0,
};
window.talk = talk;

function setStatus(s) {
  talk.status = s;
  $("status").textContent = s;
}

function log(text, cls) {
  const line = document.createElement("div");
  line.textContent = `${new Date().toISOString().slice(11, 23)}  ${text}`;
  if (cls) line.className = cls;
  const box = $("log");
  box.appendChild(line);
  while (box.childElementCount > MAX_LOG_LINES) box.removeChild(box.firstChild);
  box.scrollTop = box.scrollHeight;
}

function fail(message) {
  talk.error = message;
  setStatus("error");
  log(`error: ${message}`, "err");
}

function authHeaders() {
  const key = $("key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorMessage(response) {
  // The server answers errors as {"error": {"message": ...}}: show that, never a generic text.
  const text = await response.text();
  try {
    return JSON.parse(text).error.message || text;
  } catch (_) {
    return text || `HTTP ${response.status}`;
  }
}

function sessionConfig() {
  // ?session={...} (URL-encoded JSON) is merged into the session the ephemeral key opens.
  const session = { type: "realtime", model: "gpt-realtime" };
  const extra = new URLSearchParams(location.search).get("session");
  if (extra) Object.assign(session, JSON.parse(extra));
  return session;
}

async function ephemeralKey() {
  const response = await fetch("/v1/realtime/client_secrets", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify({ session: sessionConfig() }),
  });
  if (!response.ok) throw new Error(`client secret: ${await errorMessage(response)}`);
  return (await response.json()).value;
}

function waitForGathering(pc) {
  // The embedded server is an aiortc peer: give it our candidates in the offer (loopback is fast).
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(done, GATHER_WAIT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    });
  });
}

function meter(stream, barId, field) {
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const tick = () => {
    if (talk.status === "closed" || talk.status === "error") return;
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    const rms = Math.sqrt(sum / buf.length);
    talk[field] = Math.max(talk[field], rms);
    $(barId).style.width = `${Math.min(100, rms * 300)}%`;
    setTimeout(tick, 50);
  };
  tick();
}

function onEvent(message) {
  let event;
  try {
    event = JSON.parse(message.data);
  } catch (_) {
    log(`non-JSON message: ${String(message.data).slice(0, 80)}`, "err");
    return;
  }
  talk.eventsReceived += 1;
  if (event.type === "response.created") talk.activeResponse = event.response.id;
  if (event.type === "response.done") talk.activeResponse = null;
  talk.eventCounts[event.type] = (talk.eventCounts[event.type] || 0) + 1;
  if (talk.events.length < 2000) talk.events.push(event.type);
  if (event.type === "error") {
    log(`error event: ${event.error && event.error.message}`, "err");
  } else if (event.type === "response.output_audio_transcript.done") {
    log(`assistant: ${event.transcript}`);
  } else if (event.type === "conversation.item.input_audio_transcription.completed") {
    log(`you: ${event.transcript}`);
  } else if (!event.type.endsWith(".delta")) {
    log(event.type);
  }
}

async function start() {
  $("start").disabled = true;
  setStatus("connecting");
  try {
    const key = await ephemeralKey();
    log("ephemeral key received");
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    talk.mic = mic;
    meter(mic, "micLevel", "inputLevelMax");
    const pc = new RTCPeerConnection();
    talk.pc = pc;
    const player = document.createElement("audio");
    player.autoplay = true;
    document.body.appendChild(player);
    pc.ontrack = (e) => {
      player.srcObject = e.streams[0] || new MediaStream([e.track]);
      meter(player.srcObject, "outLevel", "outputLevelMax");
      log("remote audio track");
    };
    pc.onconnectionstatechange = () => {
      log(`connection ${pc.connectionState}`);
      if (pc.connectionState === "connected") setStatus("connected");
      if (pc.connectionState === "failed") fail("the peer connection failed");
    };
    pc.addTrack(mic.getAudioTracks()[0], mic);
    const dc = pc.createDataChannel("oai-events");
    talk.dc = dc;
    dc.onmessage = onEvent;
    dc.onopen = () => log("data channel open");
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc);
    const response = await fetch("/v1/realtime/calls", {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${key}` },
      body: pc.localDescription.sdp,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    const location = response.headers.get("Location") || "";
    talk.callId = location.split("/").pop() || null;
    $("callId").textContent = talk.callId || "";
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    log(`call ${talk.callId}`);
    for (const id of ["mute", "interrupt", "hangup", "send"]) $(id).disabled = false;
  } catch (err) {
    fail(err.message || String(err));
    $("start").disabled = false;
  }
}

function send(event) {
  if (talk.dc && talk.dc.readyState === "open") talk.dc.send(JSON.stringify(event));
}

function toggleMute() {
  talk.muted = !talk.muted;
  for (const track of talk.mic.getAudioTracks()) track.enabled = !talk.muted;
  $("mute").textContent = talk.muted ? "Unmute" : "Mute";
}

function interrupt() {
  // Like the official SDKs: cancel only a response still being generated, then stop the playback
  // (the server knows what was played, so no truncate is needed).
  if (talk.activeResponse) send({ type: "response.cancel" });
  send({ type: "output_audio_buffer.clear" });
}

function sendText() {
  const text = $("text").value.trim();
  if (!text) return;
  send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  send({ type: "response.create" });
}

async function hangup() {
  if (talk.callId) {
    await fetch(`/v1/realtime/calls/${talk.callId}/hangup`, { method: "POST", headers: authHeaders() }).catch(() => {});
  }
  if (talk.pc) talk.pc.close();
  if (talk.mic) for (const track of talk.mic.getTracks()) track.stop();
  setStatus("closed");
  for (const id of ["mute", "interrupt", "hangup", "send"]) $(id).disabled = true;
}

// A summary of getStats() for the tests and the console: what the browser sent and received.
talk.stats = async () => {
  const out = { inbound: null, outbound: null };
  if (!talk.pc) return out;
  (await talk.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      out.inbound = { packetsReceived: r.packetsReceived, bytesReceived: r.bytesReceived,
                      audioLevel: r.audioLevel, totalAudioEnergy: r.totalAudioEnergy,
                      totalSamplesDuration: r.totalSamplesDuration, packetsLost: r.packetsLost };
    } else if (r.type === "outbound-rtp" && r.kind === "audio") {
      out.outbound = { packetsSent: r.packetsSent, bytesSent: r.bytesSent };
    }
  });
  return out;
};

$("start").onclick = start;
$("mute").onclick = toggleMute;
$("interrupt").onclick = interrupt;
$("hangup").onclick = hangup;
$("send").onclick = sendText;
if (new URLSearchParams(location.search).get("autostart") === "1") start();
