"""The house rules of ``rtlayer``, read from the source: no import circles, no sideways imports between the
server's fronts, a sans-I/O server core that imports no shell, a sans-I/O ``client/`` that imports no I/O
library and no transport, a ``protocol/`` that imports only itself and ``exceptions``, and a fixed list of the
modules that call ``rtlayer_native`` directly.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a circle that only
type checkers or a lazy import see is still two modules that cannot be understood one without the other.

``python tests/test_layering.py`` prints the figures (modules, largest files, circles).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rtlayer"


def _modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted((root / "rtlayer").rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every module name an import statement of ``name`` (at ``path``) names, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # ``from package import module`` depends on the module; the package's ``__init__`` runs first
            # in any case, so it is named only when a name is taken from it
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``module -> the rtlayer modules it imports`` (``rtlayer_native`` included as a node)."""
    modules = _modules(root)
    known = set(modules) | {"rtlayer_native"}
    return {
        name: {target for target in _imported(name, path, modules) if target in known and target != name}
        for name, path in modules.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


GRAPH = import_graph()

# The server's fronts: each speaks one medium; what they share lives in http, state, runner and core.
FRONTS = {
    "ws": {"rtlayer.server.ws"},
    "webrtc": {"rtlayer.server.webrtc", "rtlayer.server._webrtc_call", "rtlayer.server._webrtc_request"},
    "sip": {name for name in GRAPH if name == "rtlayer.server.sip" or name.startswith("rtlayer.server.sip.")},
}
COMPOSERS = {"rtlayer.server.app", "rtlayer.server.realtime_server"}  # they assemble the fronts

NATIVE_USERS = {
    "rtlayer.audio",  # AudioFormat / AudioConverter: what everything else goes through
    "rtlayer._rtc_audio",  # aiortc frames <-> PCM16 48 kHz
    "rtlayer.client.session",  # the output framer
    "rtlayer.transports.webrtc",  # the microphone gate's peak meter
    "rtlayer.server._webrtc_call",  # the caller's stereo Opus frames to mono
    "rtlayer.server.core.turn_detection",  # the VAD's energy meter
    "rtlayer.server.responders",  # speed change of the spoken answer
    "rtlayer.server.speech",  # espeak's 22.05 kHz to 24 kHz
    "rtlayer.server.sip.pacer",  # the RTP send pacer's thread
    "rtlayer.wav",  # a stereo WAV to mono
    "rtlayer.load.scenario",  # where the caller's speech starts and ends (a level meter)
    "rtlayer.load.sip",  # each turn's speech as the PCMU file sipp streams (the fused transcoder)
    "rtlayer.testing.phone.providers",  # the provider's G.711, written apart from the app's on purpose
    "rtlayer.testing.phone.simulator",  # the caller's speech to the provider's rate
    "rtlayer.server.core.noise_reduction",  # the noise gate: a level per 10 ms block, a gain on the quiet ones
}
"""The modules that call ``rtlayer_native`` directly (docs/INTERNALS.md); a new one belongs on this list on
purpose, with its reason, or goes through ``rtlayer.audio``."""


def test_no_import_circle_inside_rtlayer() -> None:
    assert circles(GRAPH) == []


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_server_front_imports_another_or_its_composers() -> None:
    sideways = []
    for front, members in FRONTS.items():
        others = set().union(*(m for f, m in FRONTS.items() if f != front)) | COMPOSERS
        sideways += [f"{name} -> {target}" for name in members for target in GRAPH[name] & others]
    assert sideways == []


def test_the_server_core_imports_no_shell() -> None:
    allowed = (
        "rtlayer.server.core",
        "rtlayer.protocol",
        "rtlayer.audio",
        "rtlayer.exceptions",
        "rtlayer_native",
    )
    core = [name for name in GRAPH if name.startswith("rtlayer.server.core")]
    assert len(core) >= 12
    outside = [
        f"{name} -> {target}" for name in core for target in GRAPH[name] if not target.startswith(allowed)
    ]
    assert outside == []


def _third_party(path: Path) -> set[str]:
    """The top-level names of the absolute imports of ``path`` that are not rtlayer's own."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.partition(".")[0])
    return names - {"rtlayer", "rtlayer_native"}


I_O = {"asyncio", "aiohttp", "websockets", "aiortc", "httpx", "socket", "ssl", "selectors", "threading"}


def test_the_client_side_is_sans_io_and_imports_no_transport() -> None:
    """``rtlayer.client`` is the state every transport keeps: events in, events out, time as ``now``."""
    allowed = (
        "rtlayer.client",
        "rtlayer.protocol",
        "rtlayer.audio",
        "rtlayer.transport_events",
        "rtlayer.exceptions",
        "rtlayer_native",
    )
    modules = _modules()
    client = [name for name in GRAPH if name == "rtlayer.client" or name.startswith("rtlayer.client.")]
    assert len(client) >= 6
    outside = [
        f"{name} -> {target}" for name in client for target in GRAPH[name] if not target.startswith(allowed)
    ]
    assert outside == []
    io = [f"{name} -> {lib}" for name in client for lib in sorted(_third_party(modules[name]) & I_O)]
    assert io == []


def test_protocol_imports_only_itself_and_the_exceptions() -> None:
    protocol = [name for name in GRAPH if name.startswith("rtlayer.protocol")]
    outside = [
        f"{name} -> {target}"
        for name in protocol
        for target in GRAPH[name]
        if not target.startswith("rtlayer.protocol") and target != "rtlayer.exceptions"
    ]
    assert outside == []


def test_only_the_listed_modules_call_rtlayer_native() -> None:
    assert {name for name, targets in GRAPH.items() if "rtlayer_native" in targets} == NATIVE_USERS


def test_the_server_state_and_core_load_without_the_fronts_and_their_stacks() -> None:
    code = (
        "import sys, rtlayer.server.state, rtlayer.server.core.session; "
        "print(','.join(m for m in ('aiohttp', 'aiortc', 'websockets', 'rtlayer.server.ws', "
        "'rtlayer.server.webrtc', 'rtlayer.server.sip', 'rtlayer.server.app') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""


def test_the_client_session_loads_without_asyncio_or_a_transport() -> None:
    code = (
        "import sys, rtlayer.client.session; "
        "print(','.join(m for m in ('asyncio', 'aiohttp', 'websockets', 'aiortc', 'httpx', 'rtlayer.transport', "
        "'rtlayer.transports', 'rtlayer.server') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""


def _figures() -> None:
    sizes = sorted(((len(p.read_text().splitlines()), n) for n, p in _modules().items()), reverse=True)
    lines = sorted(size for size, _ in sizes)
    print(f"modules: {len(sizes)}  median lines: {lines[len(lines) // 2]}")
    print("largest:", ", ".join(f"{n} {s}" for s, n in sizes[:6]))
    print("circles:", circles(GRAPH) or "none")


if __name__ == "__main__":
    _figures()
