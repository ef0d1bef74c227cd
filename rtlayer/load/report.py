"""A load run's report: a table for the terminal, JSON for CI to compare runs, HTML with plots over time.

The HTML page is one self-contained file (the plots are inline SVG drawn with matplotlib, no script and
nothing fetched), so it can be kept as a CI artefact and opened anywhere.
"""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any

from .figures import COUNTERS, FIGURES, Summary
from .runner import LoadResult

__all__ = ["report_json", "summary_table", "write_report"]

_BUCKET_S = 1.0


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def summary_table(result: LoadResult) -> str:
    """The terminal summary: p50/p90/p99/max per figure, errors by code, counters, the generator's health."""
    figures = result.figures
    lines = [
        f"rtlayer load: {result.config.sessions} callers over {_medium(result)} -> {result.url}"
        f" ({result.elapsed_s:.1f} s)",
        "",
        f"{'figure (ms)':<20}{'count':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}",
    ]
    for name in FIGURES:
        s = figures.summary(name)
        if s.count:
            lines.append(
                f"{name:<20}{s.count:>8}{_ms(s.p50):>9}{_ms(s.p90):>9}{_ms(s.p99):>9}{_ms(s.max):>9}"
            )
    lines.append("")
    counters = figures.counters
    lines.append("  ".join(f"{name} {counters.get(name, 0)}" for name in COUNTERS))
    errors = figures.error_counts()
    lines.append(
        "errors: " + (", ".join(f"{code} {n}" for code, n in errors.most_common()) if errors else "none")
    )
    generator = result.generator
    cpu, lag = generator.cpu, generator.loop_lag
    lines.append(
        f"generator: {generator.processes} process(es), CPU p90 {_ms(cpu.p90)} % of a core, loop lag p99"
        f" {_ms(lag.p99)} ms, {generator.late_frames} of {generator.frames} frames late"
    )
    for reason in generator.saturation():
        lines.append(
            f"GENERATOR SATURATED: {reason}: the figures above are the generator's, not the server's"
        )
    return "\n".join(lines)


def _medium(result: LoadResult) -> str:
    provider = result.config.provider
    return f"{provider} media streams" if provider else result.config.transport


def report_json(result: LoadResult) -> dict[str, Any]:
    """Everything a CI job needs to compare two runs."""
    config = result.config
    return {
        "config": {
            "url": result.url,
            "sessions": config.sessions,
            "ramp": config.ramp,
            "duration": config.duration,
            "transport": config.transport,
            "provider": config.provider,
            "processes": config.processes,
            "turns": [turn.name for turn in config.scenario.turns],
        },
        "elapsed_s": result.elapsed_s,
        **result.figures.to_json(),
        "generator": result.generator.to_json(),
    }


def write_report(result: LoadResult, folder: str | Path) -> tuple[Path, Path]:
    """Writes ``report.json`` and ``report.html`` into ``folder`` (made if missing); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "report.html"
    json_path.write_text(json.dumps(report_json(result), indent=2, allow_nan=False, default=str))
    html_path.write_text(_html(result))
    return json_path, html_path


# -- HTML ----------------------------------------------------------------------------------------------------


def _html(result: LoadResult) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{s.count}</td><td>{_ms(s.p50)}</td><td>{_ms(s.p90)}</td>"
        f"<td>{_ms(s.p99)}</td><td>{_ms(s.max)}</td><td class=what>{html.escape(FIGURES[name])}</td></tr>"
        for name in FIGURES
        if (s := result.figures.summary(name)).count
    )
    errors = result.figures.error_counts()
    error_rows = (
        "".join(f"<tr><th>{html.escape(code)}</th><td>{n}</td></tr>" for code, n in errors.most_common())
        or "<tr><td>none</td></tr>"
    )
    saturated = "".join(
        f"<p class=warn>Generator saturated: {html.escape(reason)}. The figures are the generator's.</p>"
        for reason in result.generator.saturation()
    )
    title = f"rtlayer load: {result.config.sessions} callers, {_medium(result)}"
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222 }}
table {{ border-collapse: collapse; margin: 1em 0 }}
th, td {{ padding: .25em .8em; text-align: right; border-bottom: 1px solid #ddd }}
th {{ text-align: left }} td.what {{ text-align: left; color: #666 }}
.warn {{ background: #fee; border: 1px solid #c33; padding: .5em }}
figure {{ margin: 1em 0 }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Target {html.escape(result.url)}; {result.elapsed_s:.1f} s; counters:
{html.escape(", ".join(f"{k} {v}" for k, v in result.figures.to_json()["counters"].items()))}</p>
{saturated}
<h2>Figures (ms)</h2>
<table><tr><th>figure</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th></th></tr>
{rows}</table>
<h2>Errors</h2><table>{error_rows}</table>
<h2>Over time</h2>
{_plots(result)}
</body></html>
"""


def _plots(result: LoadResult) -> str:
    """Answer latency percentiles, active sessions, errors and generator CPU over time, as inline SVG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: draw to memory
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 9), layout="constrained")
    latency, sessions, errors, cpu = figure.subplots(4, 1, sharex=True)
    timeline = result.figures.timeline("first_audio", _BUCKET_S)
    times = [at for at, _ in timeline]
    for label, pick in (("p50", _p50), ("p90", _p90), ("p99", _p99)):
        latency.plot(times, [pick(s) for _, s in timeline], label=label, marker=".")
    latency.set_ylabel("first answer audio (ms)")
    latency.legend(loc="upper left")
    samples = sorted(result.generator.samples, key=lambda sample: sample.at)
    by_second: dict[int, list[Any]] = {}
    for sample in samples:
        by_second.setdefault(int(sample.at // _BUCKET_S), []).append(sample)
    seconds = sorted(by_second)
    sessions.step(
        [s * _BUCKET_S for s in seconds], [sum(x.active_sessions for x in by_second[s]) for s in seconds]
    )
    sessions.set_ylabel("active sessions")
    error_timeline = result.figures.error_timeline(_BUCKET_S)
    errors.bar([at for at, _ in error_timeline], [n for _, n in error_timeline], width=_BUCKET_S * 0.8)
    errors.set_ylabel("errors / s")
    cpu.plot([s * _BUCKET_S for s in seconds], [max(x.cpu_percent for x in by_second[s]) for s in seconds])
    cpu.set_ylabel("generator CPU (% of a core,\nbusiest process)")
    cpu.set_xlabel("seconds since the start")
    for axes in (latency, sessions, errors, cpu):
        axes.grid(alpha=0.3)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return "<figure>" + svg[svg.index("<svg") :] + "</figure>"


def _p50(summary: Summary) -> float:
    return summary.p50


def _p90(summary: Summary) -> float:
    return summary.p90


def _p99(summary: Summary) -> float:
    return summary.p99
