// rtlayer talk page: the official browser WebRTC flow against the embedded server, no build step.
//
// 1. POST /v1/realtime/client_secrets -> an ephemeral "ek_" key (the real key never reaches a page).
// 2. getUserMedia (browser processing off, so the level the server hears is the microphone's own),
//    RTCPeerConnection, the "oai-events" data channel, an SDP offer.
// 3. POST /v1/realtime/calls (Content-Type: application/sdp, Authorization: Bearer ek_...) -> the
//    SDP answer; the call id is the last segment of the Location header.
// Events arrive as JSON on the data channel; the answer's audio plays on the remote track.
// The conversation shows as a transcript: the user's words (input transcription, or the text typed) and
// the assistant's (its audio transcript as it streams); the raw event log is folded away below it.
// window.talk exposes the state (for tests and the console); ?autostart=1 starts on load;
// ?session={...} is merged into the session the ephemeral key opens (DEFAULT_SESSION below).
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_LOG_LINES = 400;
const GATHER_WAIT_MS = 2000;
const MAX_TRANSCRIPT_ENTRIES = 200;
// What the page asks for unless ?session= says otherwise: input transcription, so the user's words show,
// and a silence long enough that the pause between two sentences of one utterance (250-500 ms when
// people speak) does not end the turn: one spoken sentence is one turn.
const DEFAULT_SESSION = {
  type: "realtime",
  model: "gpt-realtime",
  audio: {
    input: {
      transcription: { model: "gpt-4o-mini-transcribe" },
      turn_detection: { type: "server_vad", threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 800 },
    },
  },
};

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
  transcript: [],      // [{itemId, role: "user" | "assistant", text, final}], in conversation order
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

function merged(base, extra) {
  // A deep merge of plain objects: ?session={"audio":{"output":{"voice":"ash"}}} keeps the input settings.
  const out = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const both = value && typeof value === "object" && !Array.isArray(value) && out[key] && typeof out[key] === "object";
    out[key] = both ? merged(out[key], value) : value;
  }
  return out;
}

function sessionConfig() {
  // ?session={...} (URL-encoded JSON) is merged into the session the ephemeral key opens.
  const extra = new URLSearchParams(location.search).get("session");
  return extra ? merged(DEFAULT_SESSION, JSON.parse(extra)) : DEFAULT_SESSION;
}

// -- the transcript ------------------------------------------------------------------------------------

function entry(itemId, role) {
  // The transcript line of a conversation item, created when the item first shows up.
  let line = talk.transcript.find((e) => e.itemId === itemId);
  if (!line) {
    line = { itemId, role, text: "", final: false };
    talk.transcript.push(line);
    const row = document.createElement("div");
    row.className = `turn ${role}`;
    row.dataset.itemId = itemId;
    row.innerHTML = '<span class="who"></span><span class="words"></span>';
    row.querySelector(".who").textContent = role === "user" ? "You" : "Assistant";
    $("transcript").appendChild(row);
    while (talk.transcript.length > MAX_TRANSCRIPT_ENTRIES) {
      talk.transcript.shift();
      $("transcript").removeChild($("transcript").firstChild);
    }
  }
  return line;
}

function show(line, text, final) {
  line.text = text;
  line.final = final;
  const row = $("transcript").querySelector(`[data-item-id="${CSS.escape(line.itemId)}"]`);
  if (row) {
    const words = row.querySelector(".words");
    words.textContent = text || (final ? "(nothing heard)" : "…");
    row.classList.toggle("pending", !final);
  }
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function itemText(item) {
  return (item.content || []).map((p) => p.text || p.transcript || "").join(" ").trim();
}

function onTranscriptEvent(event) {
  switch (event.type) {
    case "conversation.item.added": {
      const item = event.item || {};
      if (item.type !== "message" || (item.role !== "user" && item.role !== "assistant")) return;
      const line = entry(item.id, item.role);
      const text = itemText(item);
      if (text) show(line, text, item.role === "user");
      else show(line, line.text, false);
      return;
    }
    case "conversation.item.input_audio_transcription.delta": {
      const line = entry(event.item_id, "user");
      show(line, line.text + (event.delta || ""), false);
      return;
    }
    case "conversation.item.input_audio_transcription.completed":
      show(entry(event.item_id, "user"), event.transcript || "", true);
      return;
    case "conversation.item.input_audio_transcription.failed":
      show(entry(event.item_id, "user"), "(not transcribed)", true);
      return;
    case "response.output_audio_transcript.delta":
    case "response.output_text.delta": {
      const line = entry(event.item_id, "assistant");
      show(line, line.text + (event.delta || ""), false);
      return;
    }
    case "response.output_audio_transcript.done":
      show(entry(event.item_id, "assistant"), event.transcript || "", true);
      return;
    case "response.output_text.done":
      show(entry(event.item_id, "assistant"), event.text || "", true);
      return;
    case "conversation.item.deleted": {
      talk.transcript = talk.transcript.filter((e) => e.itemId !== event.item_id);
      const row = $("transcript").querySelector(`[data-item-id="${CSS.escape(event.item_id)}"]`);
      if (row) row.remove();
      return;
    }
    default:
  }
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
  onTranscriptEvent(event);
  if (event.type === "error") {
    log(`error event: ${event.error && event.error.message}`, "err");
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
