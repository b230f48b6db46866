"""What ``tracelet doctor`` checks: each tracker (its SDK, and its store through the tracker's own check in
``trackers/<name>/doctor.py``), the GPU, git and the journal directory.

Pure functions returning :class:`~tracelet_core.trackers.doctor.Check` records; no output here
(settings: :mod:`.sources`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tracelet_core.errors import BackendUnavailableError, ConfigurationError
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers import get_tracker
from tracelet_core.trackers.descriptor import load_object
from tracelet_core.trackers.doctor import Check, sdk_version, writable

__all__ = ["Check", "check_backend", "check_git", "check_gpu", "check_journal"]


def check_backend(name: str, settings: TraceletSettings) -> Check:
    """The tracker's SDK (installed? version) and whether its store can be reached and written (its own check)."""
    try:
        tracker = get_tracker(name)
        backend_cls = tracker.backend_class()
        backend_cls.check_available()
    except (BackendUnavailableError, ConfigurationError) as exc:
        return Check(name, "error", "cannot be loaded", fix=str(exc))
    sdk = tracker.sdk or backend_cls.sdk_module
    version = sdk_version(tracker.distribution or sdk)
    if tracker.doctor is None:
        check = Check(name, "ok", "loaded (its store is not probed)")
    else:
        check = load_object(tracker.doctor)(settings.backend_options(name))
    if tracker.min_version and version and _older(version, tracker.min_version):
        check = Check(
            name,
            "error",
            f"{sdk} {version} is older than {tracker.min_version}, the oldest Tracelet works with",
            f'pip install "{sdk}>={tracker.min_version}"',
        )
    check.name = name
    check.details.setdefault("sdk", sdk)
    check.details["version"] = version
    return check


def _older(version: str, minimum: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) < Version(minimum)
    except InvalidVersion:
        return False


def check_gpu() -> Check:
    """NVIDIA GPUs through NVML (information only: training without a GPU is fine)."""
    try:
        import pynvml
    except ImportError:
        return Check(
            "gpu", "info", 'nvidia-ml-py is not installed: no GPU metrics (pip install "tracelet-lightning[gpu]")'
        )
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Check("gpu", "info", f"no NVIDIA driver or GPU ({exc})")
    try:
        count = pynvml.nvmlDeviceGetCount()
        names = [str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
        driver = str(pynvml.nvmlSystemGetDriverVersion())
    finally:
        pynvml.nvmlShutdown()
    return Check(
        "gpu",
        "ok",
        f"{count} GPU(s): {', '.join(names)} (driver {driver})",
        details={"count": count, "names": names, "driver": driver},
    )


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def check_git() -> Check:
    """The repository the working directory is in (information only)."""
    if _git("--version") is None:
        return Check("git", "info", "git is not installed: runs get no git.* tags")
    top = _git("rev-parse", "--show-toplevel")
    if top is None:
        return Check("git", "info", "not inside a git repository: runs get no git.* tags")
    commit = _git("rev-parse", "--short", "HEAD") or "no commit yet"
    branch = _git("symbolic-ref", "--short", "-q", "HEAD") or "detached HEAD"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    summary = f"{top}: {branch} at {commit}" + (" (uncommitted changes)" if dirty else "")
    return Check("git", "ok", summary, details={"root": top, "commit": commit, "branch": branch, "dirty": dirty})


def check_journal(directory: Path) -> Check:
    """The journal directory: writable, how many runs, how many with undelivered events."""
    from tracelet_core.trackers.journal.reader import journal_runs

    ok, why = writable(directory)
    if not ok:
        return Check("journal", "error", why, "Set TRACELET_JOURNAL_DIR to a writable directory.")
    runs = journal_runs(directory) if directory.is_dir() else []
    waiting = [run for run in runs if run.pending]
    unreadable = [run for run in runs if not run.readable]
    summary = f"{directory.absolute()}: {len(runs)} run(s) ({why})"
    details = {
        "path": str(directory.absolute()),
        "runs": len(runs),
        "undelivered_runs": len(waiting),
        "unreadable_runs": len(unreadable),
    }
    problems, fixes = [], []
    if waiting:
        problems.append(f"{len(waiting)} with undelivered events")
        fixes.append("Run `tracelet sync` to deliver them (`tracelet runs --pending` lists them).")
    if unreadable:
        problems.append(f"{len(unreadable)} unreadable ({', '.join(run.run_id[:8] for run in unreadable[:5])})")
        fixes.append("`tracelet runs` says why each journal cannot be read; move a damaged run's directory aside.")
    if problems:
        return Check("journal", "warn", summary + "; " + "; ".join(problems), " ".join(fixes), details)
    return Check("journal", "ok", summary, details=details)
