"""Fault injection: a SIP call (sipp) over a path with 5 % loss and 40 ms +- 20 ms of jitter keeps its
audio flowing both ways, ends normally, and counts the loss.

Where the kernel has ``sch_netem``, the call runs inside a network namespace this test makes, with
``tc qdisc add dev lo root netem loss 5% delay 40ms 20ms`` on its loopback (a child pytest runs the
same call in there). Everywhere, it also runs through :class:`~impairment.ImpairedSipPath`: the same
impairment made in userspace on every SIP and RTP datagram, with deterministic loss, so the counts
can be checked exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from impairment import NETEM, ImpairedSipPath, netem_available
from sip_helpers import SIPP, RtpSink, g711_speech, run_sipp, sip_rig

from rtlayer.server.sip.call import SipCall
from rtlayer.transports.sip import build_initial_config

# Exclusive: the userspace impairment delays each datagram on this process's timers, so a neighbouring test's
# CPU would add its own lag to the modelled 40 +- 20 ms and hold more packets in flight when the call ends (with
# a busy loop on one core: 7 of the caller's last packets instead of at most 3).
pytestmark = [pytest.mark.timeout(60), pytest.mark.exclusive]
INSIDE_NETEM = os.environ.get("RTLAYER_TEST_INSIDE_NETEM") == "1"
SPEECH_PACKETS = 150  # uac_pcmu_caller_bye_3s streams 3 s of 20 ms packets, then hangs up


async def _call(workdir: Path, impaired: bool) -> None:
    assert SIPP is not None, "sipp is missing: run scripts/install-test-deps (Debian package sip-tester)"
    (workdir / "speech.pcmu").write_bytes(g711_speech("pcmu"))
    async with sip_rig() as (server, app):
        sink = RtpSink()
        await sink.start()
        path = ImpairedSipPath(server.sip.port) if impaired else None
        if path is not None:
            path.open()
        try:
            sipp = await run_sipp(
                "uac_pcmu_caller_bye_3s",
                path.port if path is not None else server.sip.port,
                workdir,
                keys={"rtp_sink": str(sink.port)},
            )
            call = await app.next_call()
            sip_call = server.state.calls.get(call.call_id)
            assert isinstance(sip_call, SipCall) and app.client is not None
            # no turn detection: the caller's audio must not cut the answer short (barge-in)
            no_vad = {"audio": {"input": {"turn_detection": None}}}
            await app.client.accept(
                call.call_id, build_initial_config(instructions="Greet the caller.", config=no_vad)
            )
            async with websockets.connect(
                f"{server.ws_url}?call_id={call.call_id}", additional_headers={"Authorization": "Bearer k"}
            ) as control:
                await control.send(json.dumps({"type": "response.create"}))
                code, log = await sipp.wait(30)
            assert code == 0, log  # sipp's BYE got its 200, through the losses (retransmitted if need be)
            assert sip_call.dialog.end_reason == "remote_hangup" and call.call_id not in server.state.calls
            stats = sip_call.stats()
            # the caller's audio flowed in, and every packet is heard, counted lost, or counted refused
            # while its source was on probation (sipp sends from another port than its SDP names, and
            # jitter reorders the packets probation wants in sequence); up to three of the last ones
            # may still be on the way when the BYE ends the call
            heard, lost, refused = stats["rtp_received"], stats["rtp_lost"], stats["rtp_foreign"]
            assert heard >= SPEECH_PACKETS * 0.8, stats
            assert heard + lost + refused >= SPEECH_PACKETS - 3, stats
            # our answer flowed out: the sink heard it, with the gaps the path made
            seqs = sorted({p[2] for p in sink.packets})
            assert len(seqs) >= 20, (
                len(seqs),
                stats,
                path and (path.impairment.seen, path.impairment.dropped),
            )
            if path is not None:
                to_server = path.rtp_flow(sip_call.rtp_port)
                to_caller = path.rtp_flow(sink.port)
                sent = path.impairment.seen[to_server]
                dropped = path.impairment.dropped[to_server]
                assert sent >= SPEECH_PACKETS - 3 and dropped >= 3
                assert sent - dropped - 3 <= heard + refused <= sent - dropped, (sent, dropped, stats)
                # every gap given up was a loss, or a packet later than the reorder buffer waits for
                # (a loaded machine); the last loss may go unseen
                lost, late = stats["rtp_lost"], stats["rtp_late"]
                assert dropped - 1 <= lost <= dropped + late, (
                    dropped,
                    lost,
                    late,
                )  # the last gap may go unseen
                assert seqs[-1] - seqs[0] + 1 - len(seqs) >= path.impairment.dropped[to_caller] - 1 >= 1
                assert path.impairment.dropped["sip<"] >= 1  # the signalling took a loss too, and got over it
        finally:
            if path is not None:
                path.close()
            sink.close()


async def test_a_sip_call_through_a_lossy_jittery_path_keeps_its_audio_and_ends_normally(
    tmp_path: Path,
) -> None:
    await _call(tmp_path, impaired=True)


@pytest.mark.skipif(not INSIDE_NETEM, reason="runs inside the netem namespace made by the test below")
async def test_a_sip_call_on_this_hosts_network(tmp_path: Path) -> None:
    await _call(tmp_path, impaired=False)


@pytest.mark.skipif(INSIDE_NETEM, reason="already inside the namespace")
def test_a_sip_call_under_netem_in_a_network_namespace(tmp_path: Path) -> None:
    if not netem_available():
        pytest.skip("this kernel has no sch_netem (tc qdisc netem is refused): the userspace path covers it")
    script = (
        f"ip link set lo up && tc qdisc add dev lo root netem {NETEM} && exec {sys.executable} -m pytest "
        f"{__file__}::test_a_sip_call_on_this_hosts_network -q -p no:cacheprovider --basetemp={tmp_path}/inner"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        env={**os.environ, "RTLAYER_TEST_INSIDE_NETEM": "1"},
        capture_output=True,
        text=True,
        timeout=50,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
