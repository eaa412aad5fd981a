"""Reading Server-Sent Events from a live httpx stream, event by event, with a deadline."""

from __future__ import annotations

import json
import time
from typing import Callable, Iterator

import httpx


def iter_events(response: httpx.Response) -> Iterator[tuple[str, object]]:
    """(event, data) per event as it arrives; ("keep-alive", None) per comment line, so a caller
    waiting for something gets control back at least once per heartbeat."""
    name, data = None, []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "keep-alive", None
        elif line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and name is not None:
            yield name, json.loads("\n".join(data)) if data else None
            name, data = None, []


class EventReader:
    """Reads one stream's events across several waits (an httpx stream can be iterated once)."""

    def __init__(self, response: httpx.Response):
        self._events = iter_events(response)
        self.seen: list[tuple[str, object]] = []

    def until(self, stop: Callable[[str, object], bool], timeout: float = 60) -> list[tuple[str, object]]:
        """Events (keep-alives left out) up to and including the first one ``stop`` accepts; fails
        after ``timeout`` s or if the stream ends first. All events so far are in ``seen``."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        for name, data in self._events:
            if name != "keep-alive":
                self.seen.append((name, data))
                if stop(name, data):
                    return self.seen[start:]
            assert time.monotonic() < deadline, f"no matching event within {timeout} s; saw {self.seen}"
        raise AssertionError(f"the stream ended first; saw {self.seen}")

    def rest(self) -> list[tuple[str, object]]:
        """What is left until the stream ends."""
        return list(self._events)


def read_until(response: httpx.Response, stop: Callable[[str, object], bool],
               timeout: float = 60) -> list[tuple[str, object]]:
    """One wait on a fresh stream (see ``EventReader.until``)."""
    return EventReader(response).until(stop, timeout)
