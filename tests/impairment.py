"""A lossy, jittery network path on loopback, for the fault-injection tests.

``tc qdisc add dev lo root netem loss 5% delay 40ms 20ms`` inside a network namespace the test makes
is the real thing (``shared/testing/LOOPBACK_TESTING.md``), and :func:`netem_available` says whether
this kernel has it (kernels built without ``sch_netem``, as in some VMs, refuse the qdisc). Where it
does not, the same impairment is made in userspace by :class:`Impairment`, applied to every datagram
of a path: SIP through :class:`ImpairedSipPath` (a relay that also relays the RTP each SDP announces,
as a media-aware NAT does) and WebRTC at the client's own UDP sockets.

The loss is deterministic (every ``loss_every``-th datagram of each flow, from its ``first_loss``-th:
5 %), so that "the loss was counted" cannot flake; the delay is 40 ms plus or minus up to 20 ms from a
seeded generator, which reorders packets as netem's jitter does.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import cast

from rtlayer.server.sip.message import SipParseError, parse_message

Addr = tuple[str, int]
NETEM = "loss 5% delay 40ms 20ms"


def netem_available() -> bool:
    """Whether ``tc ... netem`` works here, tried in a throwaway network namespace."""
    try:
        probe = subprocess.run(
            ["unshare", "-n", "sh", "-c", f"ip link set lo up && tc qdisc add dev lo root netem {NETEM}"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


class Impairment:
    """Per flow: which datagrams are lost, and how late the others arrive."""

    def __init__(
        self,
        *,
        loss_every: int = 20,
        first_loss: int = 3,
        delay: float = 0.04,
        jitter: float = 0.02,
        seed: int = 5,
    ) -> None:
        self.loss_every = loss_every
        self.first_loss = first_loss
        self.delay = delay
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.seen: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.active = True

    def decide(self, flow: str) -> float | None:
        """The delay for the next datagram of ``flow``, or None: it is lost. 0 once ``active`` is off."""
        if not self.active:
            return 0.0
        index = self.seen[flow]
        self.seen[flow] += 1
        if index >= self.first_loss and (index - self.first_loss) % self.loss_every == 0:
            self.dropped[flow] += 1
            return None
        return self.delay + self.rng.uniform(-self.jitter, self.jitter)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Addr], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, (addr[0], addr[1]))


class _Pipe:
    """Two sockets: what reaches ``front`` leaves ``back`` for ``target``; what reaches ``back`` leaves
    ``front`` for whoever last sent to ``front``. Each way through ``impairment``, as flow ``name``."""

    def __init__(
        self, impairment: Impairment, name: str, target: Addr, rewrite: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.impairment = impairment
        self.name = name
        self.target = target
        self.rewrite = rewrite or (lambda data: data)
        self.peer: Addr | None = None
        self.front_sock = _bound()
        self.back_sock = _bound()
        self.port = int(self.front_sock.getsockname()[1])
        self.front = _Relay(self._from_front)
        self.back = _Relay(self._from_back)
        self.tasks: list[asyncio.Future[object]] = []

    def open(self) -> None:
        loop = asyncio.get_running_loop()
        for sock, proto in ((self.front_sock, self.front), (self.back_sock, self.back)):
            self.tasks.append(
                asyncio.ensure_future(loop.create_datagram_endpoint(_factory(proto), sock=sock))
            )

    def _forward(self, relay: _Relay, data: bytes, to: Addr, flow: str) -> None:
        delay = self.impairment.decide(flow)
        if delay is None or relay.transport is None:
            return
        data = self.rewrite(data)
        asyncio.get_running_loop().call_later(delay, _send, relay, data, to)

    def _from_front(self, data: bytes, addr: Addr) -> None:
        self.peer = addr
        self._forward(self.back, data, self.target, f"{self.name}>")

    def _from_back(self, data: bytes, addr: Addr) -> None:
        if self.peer is not None:
            self._forward(self.front, data, self.peer, f"{self.name}<")

    def close(self) -> None:
        for relay, sock in ((self.front, self.front_sock), (self.back, self.back_sock)):
            if relay.transport is not None:
                relay.transport.close()
            else:
                sock.close()


def _factory(proto: _Relay) -> Callable[[], _Relay]:
    return lambda: proto


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _send(relay: _Relay, data: bytes, to: Addr) -> None:
    if relay.transport is not None and not relay.transport.is_closing():
        relay.transport.sendto(data, to)


class ImpairedSipPath:
    """SIP to ``server_port`` through an impaired relay at ``.port``; every SDP's ``m=audio`` port is
    replaced by a relay of its own, so the RTP of both directions takes the impaired path too."""

    _MEDIA = re.compile(rb"^m=audio (\d+) ", re.MULTILINE)

    def __init__(self, server_port: int, impairment: Impairment | None = None) -> None:
        self.impairment = impairment or Impairment()
        self.sip = _Pipe(self.impairment, "sip", ("127.0.0.1", server_port), self._rewrite_sdp)
        self.port = self.sip.port
        self.media: dict[int, _Pipe] = {}

    def open(self) -> None:
        self.sip.open()

    def rtp_flow(self, to_port: int) -> str:
        """The name of the RTP flow towards the media port ``to_port`` (for the counters)."""
        return f"rtp:{to_port}>"

    def _rewrite_sdp(self, data: bytes) -> bytes:
        try:
            msg = parse_message(data)
        except SipParseError:
            return data
        found = self._MEDIA.search(msg.body)
        if found is None:
            return data
        port = int(found.group(1))
        pipe = self.media.get(port)
        if pipe is None:
            pipe = self.media[port] = _Pipe(self.impairment, f"rtp:{port}", ("127.0.0.1", port))
            pipe.open()
        msg.body = msg.body[: found.start(1)] + str(pipe.port).encode() + msg.body[found.end(1) :]
        return msg.to_bytes()

    def close(self) -> None:
        self.sip.close()
        for pipe in self.media.values():
            pipe.close()


class ImpairedTransport:
    """A datagram transport whose ``sendto`` goes through ``impairment`` (one flow per local socket
    and destination); everything else is the wrapped transport's. Wrapping the sending side of every
    socket of a process impairs each datagram once, as netem on the loopback's egress does."""

    def __init__(self, inner: asyncio.DatagramTransport, impairment: Impairment) -> None:
        self._inner = inner
        self._impairment = impairment
        self._local = inner.get_extra_info("sockname")

    def sendto(self, data: bytes, addr: Addr | None = None) -> None:
        delay = self._impairment.decide(f"{self._local}>{addr}")
        if delay == 0.0:  # not impaired: at once (a goodbye may be the socket's last datagram)
            self._inner.sendto(data, addr)
        elif delay is not None:
            asyncio.get_running_loop().call_later(delay, self._send_later, data, addr)

    def _send_later(self, data: bytes, addr: Addr | None) -> None:
        if not self._inner.is_closing():
            self._inner.sendto(data, addr)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)
