"""Which Hugging Face ``Trainer`` checkpoints reach the trackers, and the run a checkpoint folder names.

A ``Trainer`` checkpoint is a folder (``<output_dir>/checkpoint-<step>``) of several files. Each
upload hard-links the files (no copy on the training thread) as ``checkpoints/checkpoint-<step>/<file>``.
The weights file carries the checkpoint's metadata (``step``, ``epoch``, ``aliases`` ``best``/``last``)
for the run's checkpoint index; under ``last`` and ``best`` every file ``replaces`` the same file of
the previously uploaded checkpoint, which trackers that can delete files then drop.

Before uploading, ``tracelet_run.json`` is written into the folder: the Tracelet run (id,
experiment, journal directory, each tracker's run id) that a resumed training continues.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracelet_core.run import Run

__all__ = ["RUN_FILE", "CheckpointUploads", "read_run_file", "write_run_file"]

RUN_FILE = "tracelet_run.json"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors")


def write_run_file(folder: str | os.PathLike[str], run: Run) -> None:
    """Write ``tracelet_run.json`` (the run to continue from this checkpoint) into ``folder``."""
    state = {
        "run_id": run.id,
        "experiment": run.experiment,
        "journal_dir": str(Path(run.settings.journal_dir).resolve()),
        "backend_run_ids": run.backend_run_ids,
    }
    Path(folder, RUN_FILE).write_text(json.dumps(state, indent=1))


def read_run_file(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run a checkpoint folder names (see :func:`write_run_file`), or None.

    Example:
        >>> read_run_file("/nonexistent") is None
        True
    """
    path = Path(folder, RUN_FILE)
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("run_id") else None


@dataclass
class CheckpointUploads:
    """Uploads checkpoint folders as the ``log_checkpoints`` policy says (``none``, ``last``, ``best``, ``all``).

    Example:
        >>> uploads = CheckpointUploads("best")
        >>> uploads.wanted("out/checkpoint-4", best="out/checkpoint-2"), uploads.wanted("out/checkpoint-4", best=None)
        (False, False)
        >>> uploads.wanted("out/checkpoint-4", best="out/checkpoint-4")
        True
    """

    policy: str
    previous: dict[str, str] = field(default_factory=dict)  # file name -> its last upload's name

    def wanted(self, folder: str, best: str | None) -> bool:
        """Whether the checkpoint just saved in ``folder`` is uploaded (``best``: the Trainer's best checkpoint)."""
        if self.policy == "best":
            return best is not None and os.path.realpath(best) == os.path.realpath(folder)
        return self.policy in ("last", "all")

    def upload(self, run: Run, folder: str, step: int, epoch: float | None, best: str | None) -> None:
        """Hand every file of ``folder`` to ``run.log_artifact`` (hard links; the upload is the delivery's)."""
        aliases = ["last"] + (["best"] if best and os.path.realpath(best) == os.path.realpath(folder) else [])
        base = f"checkpoints/{Path(folder).name}"
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            name = f"{base}/{relative}"
            metadata: dict[str, Any] = {}
            if relative in WEIGHTS_FILES:
                metadata = {"step": step, "epoch": epoch, "aliases": aliases}
            if self.policy in ("last", "best") and relative in self.previous:
                metadata["replaces"] = self.previous[relative]
            run.log_artifact(path, name, metadata=metadata or None)
            self.previous[relative] = name
        run.set_tags(
            {"tracelet.checkpoint.last": base, **({"tracelet.checkpoint.best": base} if "best" in aliases else {})}
        )
