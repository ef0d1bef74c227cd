"""Locust users that call a phone bot as a telephony provider would (``rtlayer.load.locust``).

    rtlayer bridge --provider twilio &                # or your own bot's media-stream endpoint
    locust -f examples/locustfile_phone.py --host ws://127.0.0.1:8080/media-stream --headless -u 20 -r 5 -t 1m

Each user is one call: the provider's opening messages, the caller's speech in the provider's encoding at
real-time pace, the bot's answer played with the provider's playback marks; Locust gets the figures a caller
experiences (request type = the figure, name = the turn).
"""

from rtlayer.load.locust import MediaStreamUser


class TwilioCaller(MediaStreamUser):
    provider = "twilio"
    custom = {"caller_tier": "load-test"}  # arrives in the bot's start message, as Twilio's customParameters
    call_seconds = 20.0
