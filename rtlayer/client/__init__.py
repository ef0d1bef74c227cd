"""The client side of a Realtime session, sans-I/O: the state every transport keeps, without the transport.

- ``session``: ``ClientSession``, fed server events and app calls, producing client events and typed events;
- ``messages``: the client events built from app calls (pure functions);
- ``views``: the typed events that are plain views of one server event;
- ``playout``: what is known about one assistant audio item, and the clock used without a tracker;
- ``sequencer``: ``response.create`` sent only when the server can take it.

Nothing here does I/O or imports asyncio: the transports in ``rtlayer.transports`` are the shells.
"""
