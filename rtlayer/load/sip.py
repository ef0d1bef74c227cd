"""SIP callers: sipp places the calls, from a sipp scenario generated out of the same scenario file.

sipp is the standard SIP load tool; rtlayer does not write another. :func:`sipp_scenario` turns a
:class:`~rtlayer.load.scenario.Scenario` into a sipp scenario (an INVITE offering PCMU, ACK, each turn's
speech streamed as RTP at real-time pace with sipp's ``rtp_stream``, then BYE) and the G.711 files it plays
(transcoded by ``rtlayer_native``). :func:`run_sip_load` runs sipp with the run's callers, ramp and
duration, and reads its statistics back into :class:`~rtlayer.load.figures.Figures`:

- ``sip_setup``: INVITE -> 200 OK, per call (sipp's response-time measure);
- errors by sipp's failure reason (``sip_failed:timeout_on_recv``, ``sip_failed:call_rejected``, ...);
- counters: calls started (``sessions``), calls that got their 200 OK (``connected``), turns played.

sipp does not listen to what it receives, so a SIP run measures what the signalling and the media path
sustain, not answer latency: each turn waits its speech, an answer as long as the speech, and the turn's
pause. Point the media-stream or WebSocket callers at the same bot for latency figures.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import rtlayer_native

from .figures import Figures
from .monitor import GeneratorSample, GeneratorStats
from .scenario import CALLER_FORMAT, Scenario

__all__ = ["SIPP_FAILURES", "SippNotFound", "call_ms", "run_sip_load", "sipp_scenario"]

#: sipp's failure counters (its statistics file) -> rtlayer's error code
SIPP_FAILURES = {
    "FailedCannotSendMessage(C)": "cannot_send",
    "FailedMaxUDPRetrans(C)": "max_udp_retrans",
    "FailedTcpConnect(C)": "tcp_connect",
    "FailedTcpClosed(C)": "tcp_closed",
    "FailedUnexpectedMessage(C)": "unexpected_message",
    "FailedCallRejected(C)": "call_rejected",
    "FailedCmdNotSent(C)": "cmd_not_sent",
    "FailedRegexpDoesntMatch(C)": "regexp_doesnt_match",
    "FailedRegexpShouldntMatch(C)": "regexp_shouldnt_match",
    "FailedRegexpHdrNotFound(C)": "regexp_hdr_not_found",
    "FailedOutboundCongestion(C)": "outbound_congestion",
    "FailedTimeoutOnRecv(C)": "timeout_on_recv",
    "FailedTimeoutOnSend(C)": "timeout_on_send",
    "OutOfCallMsgs(C)": "out_of_call_message",
    "DeadCallMsgs(C)": "dead_call_message",
    "FatalErrors(C)": "fatal_error",
}
_GRACE_S = 15


class SippNotFound(RuntimeError):
    """sipp (Debian's ``sip-tester``) is needed for SIP callers."""


def call_ms(scenario: Scenario) -> int:
    """How long one sipp call lasts: every turn's speech, its answer (as long) and its pause."""
    return sum(2 * turn.speech_ms + turn.pause_ms for turn in scenario.turns)


def sipp_scenario(scenario: Scenario) -> tuple[str, dict[str, bytes]]:
    """(the sipp scenario XML, {file name: PCMU payload}) for one call playing every turn once."""
    if any(turn.speech is None for turn in scenario.turns):
        raise ValueError("a SIP caller can only speak: every turn of the scenario needs 'audio'")
    files: dict[str, bytes] = {}
    steps = []
    for index, turn in enumerate(scenario.turns):
        assert turn.speech is not None
        transcoder = rtlayer_native.Transcoder("pcm16", CALLER_FORMAT.rate, "pcmu", 8000)
        name = f"turn{index + 1}.pcmu"
        files[name] = transcoder.process(turn.speech) + transcoder.flush()
        # sipp streams the file at real time from now; the pause covers it, the answer and the turn's pause.
        steps.append(
            f'  <nop><action><exec rtp_stream="{name},1,0"/></action></nop>\n'
            f'  <pause milliseconds="{2 * turn.speech_ms + turn.pause_ms}"/>\n'
        )
    return _SCENARIO.replace("@TURNS@", "".join(steps)), files


async def run_sip_load(
    target: str, scenario: Scenario, *, sessions: int, ramp: float, duration: float
) -> tuple[Figures, GeneratorStats]:
    """sipp calling ``target`` (``HOST:PORT``): ``sessions`` calls at once at most, started ``ramp`` a second,
    new calls replacing ended ones until ``duration`` seconds; bounded by sipp's own global timeout."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SippNotFound("sipp is not installed (Debian: apt-get install sip-tester)")
    xml, files = sipp_scenario(scenario)
    per_call_s = call_ms(scenario) / 1000
    total = max(sessions, sessions * math.ceil(duration / max(per_call_s, 0.001)))
    figures, generator = Figures(), GeneratorStats()
    with tempfile.TemporaryDirectory(prefix="rtlayer-sipp-") as folder:
        work = Path(folder)
        _write_files(work, xml, files)
        args = [
            sipp, "-sf", "scenario.xml", "-m", str(total), "-l", str(sessions), "-r", f"{ramp:g}", "-rp", "1000",
            "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(_free_udp_port()), "-mp", str(_free_udp_port()),
            "-nostdin", "-timeout", f"{duration + per_call_s + _GRACE_S:.0f}s", "-timeout_error",
            "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_rtt", "-rtt_freq", "1", "-trace_err",
            "-s", "rtlayer", target,
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *args, cwd=folder, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        loop = asyncio.get_running_loop()
        origin = loop.time()
        sampler = loop.create_task(_sample_cpu(process.pid, origin, generator))
        try:
            async with asyncio.timeout(duration + per_call_s + 2 * _GRACE_S):
                # Past the duration no new call starts: sipp stops placing calls and lets the live ones end.
                await asyncio.wait({loop.create_task(process.wait())}, timeout=duration)
                if process.returncode is None:
                    process.send_signal(_SIGUSR1)  # sipp: stop placing calls, finish the ones in progress
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            figures.error("sipp_timeout", "run", duration)
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        _read_statistics(work, figures, turns_per_call=len(scenario.turns))
        _read_refusals(work, figures)
        _read_response_times(work, figures, origin_unix=_first_stat_time(work))
    generator.frames = 0
    return figures, generator


def _read_statistics(work: Path, figures: Figures, turns_per_call: int) -> None:
    """sipp's cumulative counters (the last row of its statistics file) into counters and errors."""
    path = next(work.glob("*_.csv"), None) or (work / "stat.csv")
    if not path.exists():
        figures.error("sipp_no_statistics", "run", 0.0)
        return
    rows = list(csv.DictReader(io.StringIO(path.read_text()), delimiter=";"))
    if not rows:
        return
    last = rows[-1]
    created = int(last.get("TotalCallCreated", 0) or 0)
    successful = int(last.get("SuccessfulCall(C)", 0) or 0)
    failed = int(last.get("FailedCall(C)", 0) or 0)
    figures.count("sessions", created)
    figures.count("connected", successful + failed - _int(last, "FailedCallRejected(C)"))
    figures.count("answered", successful)
    figures.count("turns", successful * turns_per_call)  # a call that ended well played every turn
    for column, code in SIPP_FAILURES.items():
        for _ in range(_int(last, column)):
            figures.error(f"sip_failed:{code}", "call", 0.0)


_STATUS = re.compile(r"received 'SIP/2\.0 ([3-6]\d\d)\b")


def _read_refusals(work: Path, figures: Figures) -> None:
    """The final responses that ended calls sipp did not expect (its error log quotes each message):
    ``sip_status:486`` and the like, beside sipp's own reason."""
    for path in work.glob("*_errors.log"):
        for status in _STATUS.findall(path.read_text(errors="replace")):
            figures.error(f"sip_status:{status}", "call", 0.0)


def _read_response_times(work: Path, figures: Figures, origin_unix: float | None) -> None:
    """sipp's per-call response times (INVITE -> 200 OK): ``date_ms;response_time_ms;rtd_no`` lines."""
    for path in work.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) < 2:
                continue
            try:
                at_ms, value = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            at = 0.0 if origin_unix is None else max(0.0, at_ms / 1000 - origin_unix)
            figures.add("sip_setup", "call", value, at)


def _first_stat_time(work: Path) -> float | None:
    for path in work.glob("*_rtt.csv"):
        lines = path.read_text().splitlines()[1:2]
        if lines:
            try:
                return float(lines[0].split(";")[0]) / 1000
            except ValueError:
                return None
    return None


def _int(row: dict[str, str], column: str) -> int:
    try:
        return int(row.get(column) or 0)
    except ValueError:
        return 0


async def _sample_cpu(pid: int, origin: float, stats: GeneratorStats) -> None:
    """sipp's CPU once a second (Linux ``/proc``): the generator is sipp here."""
    loop = asyncio.get_running_loop()
    previous: tuple[float, float] | None = None
    while True:
        cpu = _cpu_seconds(pid)
        if cpu is None:
            return
        now = loop.time()
        if previous is not None:
            stats.samples.append(
                GeneratorSample(now - origin, 100 * (cpu - previous[0]) / (now - previous[1]), 0.0, 0)
            )
        previous = (cpu, now)
        await asyncio.sleep(1.0)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_files(work: Path, xml: str, files: dict[str, bytes]) -> None:
    (work / "scenario.xml").write_text(xml)
    for name, payload in files.items():
        (work / name).write_bytes(payload)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_SIGUSR1 = 10  # signal.SIGUSR1 on Linux, where sipp runs

_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- Generated by rtlayer load from a scenario file: one call plays every turn once. -->
<scenario name="rtlayer load">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: rtlayer-load <sip:load@[local_ip]:[local_port]>;tag=[pid]LoadTag[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:load@[local_ip]:[local_port]
      Max-Forwards: 70
      Subject: rtlayer load
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=load 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtpstream_audio_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: rtlayer-load <sip:load@[local_ip]:[local_port]>;tag=[pid]LoadTag[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:load@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

@TURNS@
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: rtlayer-load <sip:load@[local_ip]:[local_port]>;tag=[pid]LoadTag[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:load@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true"/>
</scenario>
"""
