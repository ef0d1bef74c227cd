"""The session's ``truncation``: which of the conversation's items a response still sees.

When a conversation outgrows the model's input limit, the service drops its oldest items before the
model reads it (``truncation: "auto"``), or drops more at once so the next turns can grow again
without truncating at every turn (``{"type": "retention_ratio", "retention_ratio": r}``: keep the
newest ``r`` of the limit, which keeps a cache of the conversation's start valid for longer), or does
not truncate at all (``"disabled"``). The embedded server does the same with its own estimates
(about 4 characters a text token, 100 ms an audio token), so a responder sees what a model would
have seen, and ``usage`` counts only what was kept. ``token_limits.post_instructions`` sets the limit
for what follows the instructions (the default is the model's input window less the instructions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["INPUT_TOKEN_LIMIT", "truncate"]

#: gpt-realtime's input window, in tokens
INPUT_TOKEN_LIMIT = 28_672


def truncate(
    items: list[dict[str, Any]],
    truncation: Any,
    instruction_tokens: int,
    tokens_of: Callable[[dict[str, Any]], int],
) -> list[dict[str, Any]]:
    """The newest of ``items`` that the session's ``truncation`` keeps (all of them when they fit).

    ``tokens_of`` estimates one item. Never keeps a function output whose call was dropped: a
    conversation starts at a message or a call.
    """
    if truncation == "disabled":
        return items
    limit = INPUT_TOKEN_LIMIT - instruction_tokens
    ratio = 1.0
    if isinstance(truncation, dict):
        ratio = float(truncation.get("retention_ratio", 1.0))
        limits = truncation.get("token_limits") or {}
        post = limits.get("post_instructions") if isinstance(limits, dict) else None
        if isinstance(post, int) and not isinstance(post, bool):
            limit = post
    sizes = [tokens_of(item) for item in items]
    if sum(sizes) <= limit:
        return items
    budget = limit * ratio if ratio < 1.0 else limit
    kept = 0
    start = len(items)
    while start > 0 and kept + sizes[start - 1] <= budget:
        start -= 1
        kept += sizes[start]
    while start < len(items) and items[start].get("type") == "function_call_output":
        start += 1
    return items[start:]
