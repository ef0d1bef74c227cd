"""Locust users that are rtlayer callers (``rtlayer.load.locust``).

One machine::

    rtlayer serve &                                   # or any Realtime endpoint
    locust -f examples/locustfile.py --host ws://127.0.0.1:8765/v1/realtime --headless -u 20 -r 5 -t 1m

A cluster: the same file on every machine, one ``--master`` and any number of ``--worker --master-host
HOST`` processes; Locust adds up what every worker measured (request type = the figure, name = the turn).
"""

from rtlayer.load.locust import RealtimeUser


class Caller(RealtimeUser):
    scenario_file = None  # one spoken sentence; or a JSON/TOML scenario (see rtlayer.load.scenario)
    call_seconds = 20.0  # each call lasts this long, then the caller hangs up and calls again
