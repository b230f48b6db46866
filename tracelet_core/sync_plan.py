"""What ``tracelet sync`` decides before it sends anything: where each backend's events go, and the files
whose local copies are gone.

Destinations (see :mod:`tracelet_core.destinations`): a backend the run already has goes to the place
the run recorded, whatever the current shell names; only ``retarget`` sends it where the current
settings point (a new run there: its delivery starts over). A backend added with ``to`` takes the current
settings: asking for it is asking for them. A run that did not record where its MLflow or Aim store
was goes where the shell names one explicitly (``MLFLOW_TRACKING_URI``, ``TRACELET_MLFLOW__...``),
said in the note; with nothing named, sync does not guess the working directory's default, and
leaves the backend until asked with ``retarget``.

Files: delivery releases the run's copy of a file once its trackers have it. A tracker added later
gets the file back from one that has it (MLflow: its artifact store); a file nobody can give back
makes the run incompletely copied, named in the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_core.destinations import (
    PLACE_OPTIONS,
    describe,
    place,
    recorded_options,
    resolve_sdk_variables,
    same_place,
)
from tracelet_core.pipeline.contract import DeliveryState, RunMeta
from tracelet_core.pipeline.credentials import split_credentials
from tracelet_core.pipeline.journal import Journal
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers import load_backend_class
from tracelet_core.trackers.journal.artifacts import artifact_statuses

__all__ = ["Destination", "SyncPlan", "plan_destinations", "restore_files"]

log = logging.getLogger("tracelet.sync")


@dataclass(frozen=True)
class Destination:
    """Where one backend's events go: ``where`` in words, and ``note`` when the shell names another place."""

    backend: str
    where: str
    note: str = ""


@dataclass
class SyncPlan:
    """Each backend's destination, and those sync leaves alone (``refused``: backend -> why)."""

    destinations: list[Destination] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _current(settings: TraceletSettings, name: str) -> dict[str, Any]:
    return resolve_sdk_variables(name, settings.backend_options(name))


def plan_destinations(
    journal: Journal, wanted: list[str], added: list[str], retarget: bool, settings: TraceletSettings
) -> SyncPlan:
    """Decide each wanted backend's destination and journal it (options without credentials).

    Args:
        journal: the run's journal.
        wanted: the backends to deliver to.
        added: those of ``wanted`` the run never had (their options come from ``settings``).
        retarget: send the run's own backends where ``settings`` point instead of the recorded place.
        settings: the current settings.

    Raises:
        ConfigurationError: an added backend is unknown.
        BackendUnavailableError: an added backend's SDK is not installed.
    """
    for name in added:
        load_backend_class(name).check_available()
    meta = journal.meta()
    deliveries = journal.deliveries()
    plan, chosen = SyncPlan(), {}
    for name in wanted:
        current = _current(settings, name)
        if name in added:
            chosen[name] = current
            plan.destinations.append(Destination(name, describe(name, current)))
            continue
        recorded = recorded_options(name, meta.backend_options.get(name, {}), deliveries.get(name))
        unknown = name in PLACE_OPTIONS and recorded.get(PLACE_OPTIONS[name]) is None
        if retarget:
            if unknown or not same_place(name, recorded, current):
                _start_over(journal, name)
            chosen[name] = current
            plan.destinations.append(Destination(name, describe(name, current), "retargeted"))
        elif unknown and place(name, current) is not None:
            # An older journal, or a destination taken from the SDK's variable and not recorded: the shell
            # names a place explicitly (not the working directory's default), so sync uses it and says so.
            chosen[name] = current
            note = "the run did not record its destination: this shell's setting"
            plan.destinations.append(Destination(name, describe(name, current), note))
        elif unknown:
            plan.refused[name] = (
                f"{name}: the run did not record where its {name} store is and this shell names none, so sync "
                f"does not guess; `tracelet sync RUN --retarget` sends it to {describe(name, current)}"
            )
        else:
            chosen[name] = recorded
            note = ""
            if not same_place(name, recorded, current):
                note = f"not to {describe(name, current)}, which this shell names; --retarget sends it there"
            plan.destinations.append(Destination(name, describe(name, recorded), note))
    _record(journal, meta, chosen)
    return plan


def _start_over(journal: Journal, name: str) -> None:
    """A new destination: the backend's delivery starts from the first event, into a new native run."""
    journal.update_delivery(
        name, acked_seq=0, native_id=None, location=None, state=DeliveryState.PENDING, error=None, failures=0
    )


def _record(journal: Journal, meta: RunMeta, chosen: dict[str, dict[str, Any]]) -> None:
    stored, _ = split_credentials(chosen)  # credentials come from the environment at delivery
    journal.set_meta(backends=sorted(set(meta.backends) | set(chosen)), backend_options=meta.backend_options | stored)
    journal.register_backends(list(chosen))


def restore_files(journal: Journal, backends: list[str]) -> list[str]:
    """Put back the run's copies of files ``backends`` still need, from a tracker that has them.

    Returns:
        The names of files no tracker could give back (the run cannot be copied whole).
    """
    deliveries = journal.deliveries()
    lost = []
    for status in artifact_statuses(journal.path):
        if status.size is not None or status.state == "replaced":
            continue
        if all(deliveries[name].acked_seq >= status.seq for name in backends if name in deliveries):
            continue
        if not any(_fetch(status.name, Path(status.path), holder, deliveries) for holder in status.holders):
            lost.append(status.name)
    return lost


def _fetch(name: str, target: Path, holder: str, deliveries: dict[str, Any]) -> bool:
    """Download one file from ``holder``'s copy of the run; False when that tracker cannot give it."""
    state = deliveries.get(holder)
    if holder != "mlflow" or state is None or not state.native_id or not state.location:
        return False
    from tracelet_core.trackers.mlflow.reader import fetch_artifact

    try:
        fetch_artifact(state.location, state.native_id, name, target)
    except Exception as exc:  # any failure of the store: the file is reported as not copied
        log.debug("could not fetch %s from mlflow: %s", name, exc)
        return False
    return True
