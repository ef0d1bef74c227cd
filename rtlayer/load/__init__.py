"""``rtlayer load``: realistic voice traffic against any Realtime endpoint, measured per turn.

N simulated callers (:class:`~rtlayer.load.caller.Caller`), each a real transport session, speak a
:class:`~rtlayer.load.scenario.Scenario` at real-time pace and report what they measured into
:class:`~rtlayer.load.figures.Figures`; the generator watches itself (:mod:`rtlayer.load.monitor`) so a
saturated generator is reported as such; :mod:`rtlayer.load.report` writes the terminal table, JSON and HTML.
:mod:`rtlayer.load.locust` runs the same callers as Locust users, for a cluster of machines.
"""

from __future__ import annotations

from .figures import COUNTERS, FIGURES, Figures, Summary
from .runner import LoadConfig, LoadResult, run_load, run_load_sync
from .scenario import Scenario, ScenarioError, Turn, default_scenario, load_scenario

__all__ = [
    "COUNTERS",
    "FIGURES",
    "Figures",
    "LoadConfig",
    "LoadResult",
    "Scenario",
    "ScenarioError",
    "Summary",
    "Turn",
    "default_scenario",
    "load_scenario",
    "run_load",
    "run_load_sync",
]
