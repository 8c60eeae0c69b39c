"""Split an ``application/logplex-1`` body into messages, by octet count.

A body is ``<count> SP <message>`` frames with nothing between them (RFC 6587 octet
counting). Logplex appends a LF to each message and counts it; the L10 notice it injects
itself has none and is glued to the next frame. So a newline splitter is wrong twice
(embedded newlines, glued L10) and the count is the only truth, with fallbacks:

* ``ok``: the count ends on a LF, or on the body's end, or right before the next frame;
* ``lenient``: the count runs one byte past the end (fixtures that drop the last LF);
* ``resynced``: the count ends mid-message (a stale count): the message runs to the
  next LF instead;
* ``truncated``: the count runs further past the end: the rest is the message;
* ``malformed``: no count at all: the rest of the line is a raw message.

Nothing here raises on any input; every frame is counted under one of these outcomes.
"""

from __future__ import annotations

import re

FRAME_OUTCOMES = ("ok", "lenient", "resynced", "truncated", "malformed")
_NEXT_FRAME = re.compile(rb"\d{1,8} <")
_LF = 10
_BLANK = frozenset(b" \r\n\t")


def split_frames(body: bytes) -> tuple[list[bytes], dict[str, int]]:
    """(messages without their trailing LF, outcome counts other than ``ok``).

    ``len(messages)`` is the number of frames; ``ok`` = that minus the other outcomes.
    """
    messages: list[bytes] = []
    odd: dict[str, int] = {}
    n = len(body)
    pos = 0
    find = body.find
    while pos < n:
        sp = find(b" ", pos, pos + 9)
        if sp > pos and body[pos:sp].isdigit():
            start = sp + 1
            end = start + int(body[pos:sp])
            if end <= n:
                if body[end - 1] == _LF:
                    messages.append(body[start : end - 1])
                    pos = end
                    continue
                if end == n or _NEXT_FRAME.match(body, end):
                    messages.append(body[start:end])  # the L10 notice: no LF, exact count
                    pos = end
                    continue
                nl = find(b"\n", start)
                stop = n if nl < 0 else nl
                messages.append(body[start:stop])
                odd["resynced"] = odd.get("resynced", 0) + 1
                pos = stop + 1
                continue
            message = body[start:n]
            if message.endswith(b"\n"):
                message = message[:-1]
            messages.append(message)
            outcome = "lenient" if end == n + 1 else "truncated"
            odd[outcome] = odd.get(outcome, 0) + 1
            break
        if body[pos] in _BLANK:
            pos += 1
            continue
        nl = find(b"\n", pos)
        stop = n if nl < 0 else nl
        messages.append(body[pos:stop])
        odd["malformed"] = odd.get("malformed", 0) + 1
        pos = stop + 1
    return messages, odd
