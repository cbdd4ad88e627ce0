"""A phase's manifest: the one list of what the phase runs, section by section, each check with the modes
it applies to.

Every phase module ends with its manifest; the sections are the notebook's, in the notebook's order::

    MANIFEST = Manifest(PHASE, {
        "engine": [engine_reachable, compose_cli],                  # both modes
        "swarm": [swarm_only(swarm_active), swarm_only(swarm_nodes)],
        "current state": [compose_only(current_state)],
    })

and the notebook runs one section per cell: ``phase.run_section(preflight.MANIFEST, "engine")``. Everything
else that needs a phase's checks reads the manifest too:

- :meth:`PhaseSession.run_section <runbook_lib.run.phase.PhaseSession.run_section>` runs the section's checks
  that apply to the run's mode (``compose`` or ``swarm``), so no notebook cell branches on the mode;
- the registry takes each check's phase from the manifest that lists it (:func:`runbook_lib.results.registry.place`);
- the explorer (:func:`runbook_lib.run.explorer.discover_phases`) offers a phase's checks for the mode of the
  parameters;
- the preflight gate (:meth:`PhaseSession.require_preflight <runbook_lib.run.phase.PhaseSession.require_preflight>`)
  runs the preflight manifest's checks when the run has no preflight records.

Adding a check to a section is the function (declared with :func:`runbook_lib.results.registry.check`) and one
line here; tests/report/test_registry.py holds every notebook and its manifest equal.

Two kinds of entries are not run by a section: a ``factory`` makes one check per item of the parameters
(phase 4's ``drill_for``, one per drill) and ``records`` produces records from a finished run (the sign-off);
the notebook calls those by name, and the manifest lists them so the registry and the test know them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from runbook_lib.results import registry

COMPOSE, SWARM = "compose", "swarm"
MODES: tuple[str, ...] = (COMPOSE, SWARM)
KINDS: tuple[str, ...] = ("check", "factory", "records")


@dataclass(frozen=True)
class Entry:
    """One line of a manifest: a function, the modes it applies to, and how it is called."""

    fn: Callable[..., Any]
    modes: tuple[str, ...] = MODES
    kind: str = "check"  # "check": fn(ctx) -> records; "factory": fn(item) -> a check; "records": run by the notebook

    @property
    def name(self) -> str:
        return self.fn.__name__

    def applies(self, mode: str) -> bool:
        return mode in self.modes


def compose_only(fn: Callable[..., Any]) -> Entry:
    """A check that means something only for a Compose project (run in compose mode only)."""
    return Entry(fn, (COMPOSE,))


def swarm_only(fn: Callable[..., Any]) -> Entry:
    """A check of the swarm's own account (run in swarm mode only)."""
    return Entry(fn, (SWARM,))


def factory(fn: Callable[..., Any]) -> Entry:
    """A function that makes one check per item of the parameters (the notebook loops over the items)."""
    return Entry(fn, kind="factory")


def records(fn: Callable[..., Any]) -> Entry:
    """A function that produces records from what the run already holds (the notebook adds them)."""
    return Entry(fn, kind="records")


class Manifest:
    """A phase's sections, in order; each function listed once."""

    def __init__(self, phase: str, sections: dict[str, Iterable[Callable[..., Any] | Entry]]) -> None:
        self.phase = phase
        self.sections: dict[str, tuple[Entry, ...]] = {
            name: tuple(e if isinstance(e, Entry) else Entry(e) for e in items) for name, items in sections.items()}
        seen: set[str] = set()
        for entry in self.entries:
            if entry.name in seen:
                raise ValueError(f"{phase}: {entry.name} is listed twice in the manifest")
            if entry.kind not in KINDS or not entry.modes or set(entry.modes) - set(MODES):
                raise ValueError(f"{phase}: {entry.name}: kind {entry.kind!r}, modes {entry.modes!r}")
            seen.add(entry.name)
            registry.place(entry.fn, phase)

    @property
    def entries(self) -> list[Entry]:
        """Every entry, in the notebook's order."""
        return [e for items in self.sections.values() for e in items]

    def section(self, name: str) -> tuple[Entry, ...]:
        try:
            return self.sections[name]
        except KeyError:
            raise KeyError(f"{self.phase} has no section {name!r}; its sections: {', '.join(self.sections)}") from None

    def checks(self, mode: str, section: str | None = None) -> list[Callable[..., Any]]:
        """The check functions (fn(ctx) -> records) that apply to ``mode``, in order: of one section, or of all."""
        entries = self.section(section) if section is not None else self.entries
        return [e.fn for e in entries if e.kind == "check" and e.applies(mode)]

    def __repr__(self) -> str:
        return f"Manifest({self.phase!r}, sections={list(self.sections)})"
