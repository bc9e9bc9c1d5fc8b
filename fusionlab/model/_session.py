"""The in-memory `Session`: what an adapter returns and what `fusionlab.persist` stores."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fusionlab.exceptions import ValidationError
from fusionlab.model._events import ClockEntry, Event
from fusionlab.model._stream import Stream

__all__ = ["Session", "SourceInfo"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class SourceInfo:
    """Provenance of one ingested source file."""

    path: str
    sha256: str
    adapter: str
    adapter_version: str
    options: Mapping[str, Any] = field(default_factory=dict)
    size_bytes: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """What the file says about the trial: subject parameters (SI, with units), manufacturer, trial info."""
    ingested_at: str = ""


@dataclass(frozen=True, eq=False)
class Session:
    """Streams, events, clocks and metadata of one recording session.

    Parameters
    ----------
    streams
        Raw streams, each on its own device clock, unique names.
    events
        Events; annotation events read from source files carry ``source="annotation"``.
    clocks
        One `ClockEntry` per clock identifier used by the streams.
    subject
        Subject pseudonym (never a real name).
    session_date
        ``YYYY-MM-DD`` or empty.
    metadata
        Free, JSON-serialisable metadata given by the user (study, condition, notes). What a source file says
        about the trial is kept with that source in ``sources``.
    sources
        Provenance of the ingested source files.
    """

    streams: tuple[Stream, ...] = ()
    events: tuple[Event, ...] = ()
    clocks: Mapping[str, ClockEntry] = field(default_factory=dict)
    subject: str = ""
    session_date: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[SourceInfo, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", tuple(self.streams))
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "clocks", dict(self.clocks))
        object.__setattr__(self, "metadata", dict(self.metadata))
        names = [s.name for s in self.streams]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            msg = f"Stream names in a session must be unique; duplicated: {', '.join(dup)}."
            raise ValidationError(msg)
        for s in self.streams:
            if s.clock and s.clock not in self.clocks:
                msg = f"Stream {s.name!r} uses clock {s.clock!r}, which has no clock entry in the session."
                raise ValidationError(msg)
        if self.session_date and not _DATE.match(self.session_date):
            msg = f"Invalid value for 'session_date'. Expected YYYY-MM-DD, but got {self.session_date!r} instead."
            raise ValidationError(msg)

    def stream(self, name: str) -> Stream:
        """Return the stream called ``name``."""
        for s in self.streams:
            if s.name == name:
                return s
        msg = f"No stream {name!r} in this session; streams are {', '.join(s.name for s in self.streams)}."
        raise KeyError(msg)

    def by_modality(self, modality: str) -> tuple[Stream, ...]:
        """All streams of one modality."""
        return tuple(s for s in self.streams if s.modality == modality)

    def with_prefix(self, prefix: str) -> Session:
        """Return a copy whose stream names start with ``prefix`` (used to ingest several files in one session)."""
        return replace(self, streams=tuple(s.with_name(prefix + s.name) for s in self.streams))

    def __repr__(self) -> str:
        return (f"<Session subject={self.subject!r} date={self.session_date!r} {len(self.streams)} streams, "
                f"{len(self.events)} events>")
