"""The long-running commands' heap: what start-up built is frozen out of the cyclic garbage collector.

A full (generation 2) collection walks every object the collector tracks, and every session of the process
waits while it does. An idle ``rtlayer serve`` tracks about 38,000 objects that start-up made and nothing
will free (modules, classes, functions, the app's routes); each full collection walked them all: 34 ms on
this project's 2-core test VM, and 50-74 ms while a client held 10,000 items, a stall every other session
saw. ``gc.freeze()`` moves them to the permanent generation, which collections skip: a full collection of
the idle server then takes 0.01 ms, and under that attack it walks only what the sessions made.

Only the commands call this, once they have started: they own their process. The library never changes the
collector of an application that embeds it.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collects start-up's garbage (a frozen object is never freed), then freezes what is left."""
    gc.collect()
    gc.freeze()
