"""What ``tracelet doctor`` checks: each backend's SDK and store, the GPU, git and the journal directory.

Pure functions returning :class:`Check` records; no output here (settings: :mod:`.sources`).

Network probes are short (a few seconds) and only touch the configured stores: an MLflow server gets
``GET /health`` (or an API call), a ClearML server ``GET /debug.ping``, W&B online a TCP connection
to its host once an API key is known.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from tracelet_core.backends import load_backend_class
from tracelet_core.cli.sources import mask
from tracelet_core.collectors.git import strip_credentials
from tracelet_core.errors import BackendUnavailableError, ConfigurationError
from tracelet_core.settings import TraceletSettings

__all__ = ["Check", "check_backend", "check_git", "check_gpu", "check_journal"]

TIMEOUT = 3.0
Level = Literal["ok", "info", "warn", "error"]


@dataclass
class Check:
    """One finding. ``error`` means a configured piece cannot work; ``fix`` says what to do."""

    name: str
    level: Level
    summary: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _writable(path: Path) -> tuple[bool, str]:
    """Whether files can be created in ``path`` (or, if it does not exist yet, in its nearest existing parent)."""
    target = path.expanduser().absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False, f"{existing} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".tracelet-doctor-"):
            pass
    except OSError as exc:
        return False, f"{existing} is not writable ({exc.strerror or exc})"
    return True, f"{target} writable" if existing == target else f"{target} will be created"


def _http(url: str, headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return int(response.status), "answers"
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason)


def _tcp(host: str, port: int) -> str | None:
    """None when ``host:port`` accepts a connection, else why not."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return str(exc)


def _sdk_version(module: str | None) -> str | None:
    if module is None:
        return None
    try:
        return metadata.version(module)  # the usual case: the distribution is named after the module
    except metadata.PackageNotFoundError:
        pass
    for dist in metadata.packages_distributions().get(module, []):  # slow: reads every installed package
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_backend(name: str, settings: TraceletSettings) -> Check:
    """The backend's SDK (installed? version) and whether its store can be reached and written."""
    try:
        backend_cls = load_backend_class(name)
        backend_cls.check_available()
    except (BackendUnavailableError, ConfigurationError) as exc:
        return Check(name, "error", "cannot be loaded", fix=str(exc))
    version = _sdk_version(backend_cls.sdk_module)
    probe = {"mlflow": _mlflow, "aim": _aim, "wandb": _wandb, "clearml": _clearml}.get(name)
    check = probe(settings.backend_options(name)) if probe else Check(name, "ok", "loaded (its store is not probed)")
    check.name = name
    check.details.setdefault("sdk", backend_cls.sdk_module)
    check.details["version"] = version
    return check


def _mlflow(options: dict[str, Any]) -> Check:
    uri = options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri()
    uri = str(uri)
    shown = mask("tracking_uri", uri)
    details: dict[str, Any] = {"tracking_uri": shown}
    fix: str | None
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        # The URL called has no credentials (urllib cannot take them there); they go in a header, as MLflow sends them.
        base = strip_credentials(uri).rstrip("/")
        auth = _mlflow_auth(parts)
        status, why = _http(f"{base}/health", auth)
        if status != 200 and status is not None:
            status, why = _http(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", auth)
        if status == 200:
            return Check("mlflow", "ok", f"{shown} answers", details=details)
        if status in (401, 403):
            if auth:
                fix = (
                    "Check the user name and password (in the tracking URI, or MLFLOW_TRACKING_USERNAME and "
                    "MLFLOW_TRACKING_PASSWORD) or MLFLOW_TRACKING_TOKEN."
                )
                return Check("mlflow", "error", f"{shown} refuses the credentials given ({why})", fix, details)
            fix = "Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) for it."
            return Check("mlflow", "error", f"{shown} refuses access ({why})", fix, details)
        fix = (
            f"Start the server (e.g. `mlflow server --host {parts.hostname} --port {parts.port or 5000}`) or point "
            "TRACELET_MLFLOW__TRACKING_URI (or MLFLOW_TRACKING_URI) at one that runs. Runs meanwhile stay in the "
            "journal; `tracelet sync` delivers them later."
        )
        return Check("mlflow", "error", f"MLflow tracking server {shown} does not answer ({why})", fix, details)
    if parts.scheme == "databricks":
        return Check("mlflow", "info", f"{shown} (Databricks: not probed)", details=details)
    if parts.scheme in ("sqlite", "file", ""):
        path = Path(uri.removeprefix("sqlite:///").removeprefix("file://"))
        folder = path.parent if parts.scheme == "sqlite" else path
        ok, why = _writable(folder)
        if ok and parts.scheme == "sqlite" and path.exists() and not os.access(path, os.W_OK):
            ok, why = False, f"{path} is read-only"
        fix = None if ok else "Point TRACELET_MLFLOW__TRACKING_URI at a writable location."
        return Check("mlflow", "ok" if ok else "error", f"{shown} ({why})", fix, details)
    host, port = parts.hostname, parts.port
    if host and port:  # a database: is its port open?
        problem = _tcp(host, port)
        if problem:
            return Check(
                "mlflow",
                "error",
                f"{shown}: {host}:{port} does not answer ({problem})",
                "Start the database or fix the tracking URI.",
                details,
            )
    return Check("mlflow", "ok", f"{shown} (reachable)" if host and port else shown, details=details)


def _mlflow_auth(parts: SplitResult) -> dict[str, str]:
    """The Authorization header MLflow's client would send: from MLFLOW_TRACKING_TOKEN, else
    MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, else the tracking URI's (percent-encoded) ``user:password@``.
    """
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user and password) and parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    if user:
        credentials = f"{user}:{password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    return {}


def _aim(options: dict[str, Any]) -> Check:
    repo = options.get("repo")
    if repo and str(repo).startswith("aim://"):
        parts = urlsplit(str(repo))
        problem = _tcp(parts.hostname or "", parts.port or 53800)
        if problem:
            return Check(
                "aim",
                "error",
                f"Aim server {repo} does not answer ({problem})",
                "Start it (`aim server`) or set TRACELET_AIM__REPO to a local path.",
            )
        return Check("aim", "ok", f"Aim server {repo} answers")
    fix: str | None
    path = Path(repo).expanduser() if repo else _default_aim_repo()
    path = path.parent if path.name == ".aim" else path
    exists = (path / ".aim").is_dir()
    ok, why = _writable(path / ".aim" if exists else path)
    summary = f"repository {path} ({why})" if exists else f"a new repository will be created in {path} ({why})"
    fix = None if ok else "Set TRACELET_AIM__REPO to a writable directory."
    return Check("aim", "ok" if ok else "error", summary, fix, {"repo": str(path)})


def _default_aim_repo() -> Path:
    """Aim's default: the nearest ``.aim`` above the working directory, else the working directory."""
    here = Path.cwd()
    return next((p for p in (here, *here.parents) if (p / ".aim").is_dir()), here)


def _wandb(options: dict[str, Any]) -> Check:
    mode = options.get("mode") or os.environ.get("WANDB_MODE") or "online"
    details: dict[str, Any] = {"mode": mode}
    if mode == "disabled":
        return Check("wandb", "warn", "mode disabled: W&B records nothing", "Unset WANDB_MODE to record.", details)
    if mode in ("offline", "dryrun"):
        folder = Path(options.get("dir") or os.environ.get("WANDB_DIR") or ".")
        ok, why = _writable(folder)
        fix = None if ok else "Set TRACELET_WANDB__DIR (or WANDB_DIR) to a writable directory."
        summary = f"offline: run files under {folder.absolute() / 'wandb'} ({why}); upload later with `wandb sync`"
        return Check("wandb", "ok" if ok else "error", summary, fix, details)
    base = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    host = urlsplit(base).hostname or "api.wandb.ai"
    if not (os.environ.get("WANDB_API_KEY") or _netrc_has(host)):
        fix = (
            "Run `wandb login` (or set WANDB_API_KEY), or record offline with TRACELET_WANDB__MODE=offline and "
            "upload later with `wandb sync`."
        )
        return Check("wandb", "error", f"online, but no API key for {host}", fix, details)
    problem = _tcp(host, urlsplit(base).port or (443 if base.startswith("https") else 80))
    if problem:
        fix = "Check the network or proxy, or record offline with TRACELET_WANDB__MODE=offline."
        return Check("wandb", "error", f"online, {host} does not answer ({problem})", fix, details)
    return Check("wandb", "ok", f"online ({host} answers, API key set)", details=details)


def _netrc_has(host: str) -> bool:
    import netrc

    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _clearml(options: dict[str, Any]) -> Check:
    offline = options.get("offline")
    if offline is None:
        offline = os.environ.get("CLEARML_OFFLINE_MODE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        cache = Path(os.environ.get("CLEARML_CACHE_DIR") or Path.home() / ".clearml" / "cache")
        ok, why = _writable(cache)
        fix = None if ok else "Set CLEARML_CACHE_DIR to a writable directory."
        summary = f"offline: sessions under {cache / 'offline'} ({why}); import them later into a server"
        return Check("clearml", "ok" if ok else "error", summary, fix, {"offline": True})
    host = os.environ.get("CLEARML_API_HOST")
    config = Path(os.environ.get("CLEARML_CONFIG_FILE") or Path.home() / "clearml.conf")
    if host:
        status, why = _http(f"{host.rstrip('/')}/debug.ping")
        if status == 200:
            return Check("clearml", "ok", f"server {mask('host', host)} answers", details={"offline": False})
        fix = "Start the ClearML server, fix CLEARML_API_HOST, or record offline with TRACELET_CLEARML__OFFLINE=true."
        return Check("clearml", "error", f"server {mask('host', host)} does not answer ({why})", fix)
    if config.is_file():
        return Check("clearml", "ok", f"online, configured in {config} (server not probed)", details={"offline": False})
    fix = (
        "Run `clearml-init` (or set CLEARML_API_HOST and its keys), or record offline with "
        "TRACELET_CLEARML__OFFLINE=true."
    )
    return Check("clearml", "error", "online, but no ClearML server is configured", fix, {"offline": False})


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
    from tracelet_core.readers.journal import journal_runs

    ok, why = _writable(directory)
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
