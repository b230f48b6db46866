"""The software environment: ``env.*`` tags, ``tracelet/environment.json`` and ``tracelet/requirements.txt``.

Tags: ``env.python``, ``env.platform``, ``env.hostname``, ``env.user`` (the login name),
``env.program`` (the script run: ``sys.argv[0]``, as MLflow names a run's source), and where known
``env.torch``, ``env.lightning``, ``env.cuda``, ``env.cudnn``. The rest (interpreter implementation,
CPU count, command line, packages...) is in ``tracelet/environment.json``: tags are what users filter
runs on, and every tag is one more row on each tracker's run page.
Versions of torch and Lightning come from the installed package metadata; CUDA and cuDNN versions
are read only when torch is already imported, since importing it here would cost seconds.

Secrets: environment variables are recorded only when they match ``TRACELET_ENV_INCLUDE``
(:data:`DEFAULT_ENV_INCLUDE` when that is empty) and not ``TRACELET_ENV_EXCLUDE``. Whatever the
include list says, a variable whose name looks like a secret (:data:`SECRET_NAME_PARTS`, any case)
or whose value looks like ``key=...`` settings (connection strings) is recorded as ``"***"``, and
``user:password@`` is removed from URLs. The command line is masked by the same rules: the value of
``--api-key=...``, of ``--token <value>`` and of ``db.password=...`` becomes ``"***"``.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import platform
import re
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from importlib import metadata
from typing import Any

from tracelet_core.collectors.base import Collected, Collector, CollectorContext
from tracelet_core.collectors.git import strip_credentials

__all__ = [
    "DEFAULT_ENV_INCLUDE",
    "MASK",
    "SECRET_NAME_PARTS",
    "EnvironmentCollector",
    "filter_environment",
    "installed_packages",
    "looks_secret",
    "mask_command_line",
]

MASK = "***"
# "PASS" also covers PASSWORD, PASSWD, PASSPHRASE and PGPASS; masking a harmless name costs nothing.
SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASS", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE")
# Variables that shape a training run's results or placement and are recorded unless told otherwise.
DEFAULT_ENV_INCLUDE = (
    "CUDA_*",
    "CUDNN_*",
    "CUBLAS_*",
    "NCCL_*",
    "NVIDIA_*",
    "TORCH_*",
    "TORCHINDUCTOR_*",
    "PYTORCH_*",
    "PL_*",
    "OMP_*",
    "MKL_*",
    "OPENBLAS_*",
    "KMP_*",
    "PYTHONHASHSEED",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "SLURM_*",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
)
# A value holding "AccountKey=...", "password=..." and the like (connection strings, DSNs).
_SECRET_SETTING = re.compile(r"(?i)(key|token|secret|pass|pwd|credential|auth|signature|sig)\w*\s*=")


def looks_secret(name: str) -> bool:
    """True for a name that looks like it holds a secret (``*KEY*``, ``*TOKEN*``, ... any case).

    Example:
        >>> looks_secret("HF_TOKEN"), looks_secret("db_password"), looks_secret("CUDA_VISIBLE_DEVICES")
        (True, True, False)
    """
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def _safe_value(name: str, value: str) -> str:
    if looks_secret(name) or _SECRET_SETTING.search(value):
        return MASK
    return strip_credentials(value)


def filter_environment(
    environ: Mapping[str, str], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> dict[str, str]:
    """The environment variables to record, with secrets masked.

    Args:
        environ: the variables (``os.environ``).
        include: glob patterns (any case) of names to record; :data:`DEFAULT_ENV_INCLUDE` when empty.
        exclude: glob patterns of names never to record; they win over ``include``.

    Returns:
        Name to value, sorted by name; secret-looking values are ``"***"``.

    Example:
        >>> environ = {"HF_TOKEN": "hf_x", "SEED": "1", "HOME": "/h"}
        >>> filter_environment(environ, include=["*"], exclude=["HOME"])
        {'HF_TOKEN': '***', 'SEED': '1'}
    """
    patterns = [p.upper() for p in (include or DEFAULT_ENV_INCLUDE)]
    excluded = [p.upper() for p in exclude]
    recorded: dict[str, str] = {}
    for name in sorted(environ):
        upper = name.upper()
        if any(fnmatchcase(upper, p) for p in patterns) and not any(fnmatchcase(upper, p) for p in excluded):
            recorded[name] = _safe_value(name, environ[name])
    return recorded


def mask_command_line(argv: Iterable[str]) -> list[str]:
    """The command line with secret-looking option values masked and URL credentials removed.

    Example:
        >>> mask_command_line(["train.py", "--api-key=abc", "--token", "abc", "db.password=abc", "--lr=1"])
        ['train.py', '--api-key=***', '--token', '***', 'db.password=***', '--lr=1']
    """
    masked: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            masked.append(MASK)
            mask_next = False
            continue
        key, sep, _ = arg.partition("=")
        if arg.startswith("-") and looks_secret(key.lstrip("-")):
            # "--token=value" or "--token value": either way the value goes.
            masked.append(f"{key}={MASK}" if sep else arg)
            mask_next = not sep
        elif sep and looks_secret(key):  # key=value overrides (Hydra, LightningCLI)
            masked.append(f"{key}={MASK}")
        else:
            masked.append(strip_credentials(arg))
    return masked


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _login_name() -> str | None:
    """The user running the program, as MLflow's "Created by" names it; None where there is none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no USER/LOGNAME and no passwd entry (some containers)
        return None


def _cuda_versions() -> dict[str, str]:
    """CUDA and cuDNN versions from torch, only if the program has imported torch already."""
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return {}
    found: dict[str, str] = {}
    try:
        cuda = torch.version.cuda
        if cuda:
            found["cuda"] = str(cuda)
        cudnn = torch.backends.cudnn.version() if cuda else None
        if cudnn:
            found["cudnn"] = str(cudnn)
    except Exception:  # torch half-imported by another thread, or a build without these attributes
        pass
    return found


def _name_and_version(dist: metadata.Distribution) -> tuple[str | None, str]:
    """Name and version from the metadata's first header lines.

    ``dist.metadata`` parses the whole file (long descriptions included) with the email parser, twice
    when ``dist.version`` follows; reading the two headers is ten times cheaper, and this runs in the
    training process.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if text is None:
        return dist.metadata["Name"], dist.version
    name = version = None
    for line in text.splitlines():
        if not line:
            break  # the end of the headers
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        if name and version:
            break
    return name, version or ""


def installed_packages() -> dict[str, str]:
    """Installed distributions as ``{name: version}``, sorted by name; the first on sys.path wins.

    Example:
        >>> "psutil" in installed_packages()
        True
    """
    packages: dict[str, str] = {}
    seen: set[str] = set()
    for dist in metadata.distributions():
        name, version = _name_and_version(dist)
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key not in seen:
            seen.add(key)
            packages[name] = version
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


class EnvironmentCollector(Collector):
    """Python, platform, library versions, packages, command line and filtered environment variables.

    Args:
        include: glob patterns of environment variables to record (the settings' ``env_include``
            when None).
        exclude: glob patterns never to record (the settings' ``env_exclude`` when None).

    Example:
        >>> import platform, tempfile
        >>> from pathlib import Path
        >>> collector = EnvironmentCollector(include=["CUDA_*"])
        >>> collector.start(CollectorContext(Path(tempfile.mkdtemp())))
        >>> found = collector.collect()
        >>> found.tags["env.python"] == platform.python_version(), sorted(found.artifacts)
        (True, ['tracelet/environment.json', 'tracelet/requirements.txt'])
    """

    name = "environment"

    def __init__(self, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None) -> None:
        self._include = include
        self._exclude = exclude
        self._context: CollectorContext | None = None
        self._patterns: tuple[Sequence[str], Sequence[str]] = ((), ())

    def start(self, context: CollectorContext) -> None:
        self._context = context
        settings = context.settings
        include = self._include if self._include is not None or settings is None else settings.env_include
        exclude = self._exclude if self._exclude is not None or settings is None else settings.env_exclude
        self._patterns = (include or (), exclude or ())

    def collect(self) -> Collected:
        if self._context is None:
            raise RuntimeError("EnvironmentCollector.start() must be called before collect()")
        versions = {"torch": _version("torch"), "lightning": _version("lightning", "pytorch-lightning")}
        versions.update(_cuda_versions())
        known_versions = {k: v for k, v in versions.items() if v}
        tags = {
            "env.python": platform.python_version(),
            "env.platform": platform.platform(),
            "env.hostname": socket.gethostname(),
            "env.program": sys.argv[0] if sys.argv and sys.argv[0] else "<console>",
        }
        user = _login_name()
        if user:
            tags["env.user"] = user
        tags.update({f"env.{name}": version for name, version in known_versions.items()})
        packages = installed_packages()
        capture = {
            "captured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "executable": sys.executable,
            },
            "platform": {
                "platform": platform.platform(),
                "system": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
                "hostname": socket.gethostname(),
                "cpu_count": os.cpu_count(),
            },
            "versions": known_versions,
            "command": {"argv": mask_command_line(sys.argv), "cwd": os.getcwd()},
            "env": filter_environment(os.environ, *self._patterns),
            "packages": packages,
        }
        environment_path = self._context.path_for("environment.json")
        environment_path.write_text(json.dumps(capture, indent=2) + "\n", encoding="utf-8")
        requirements_path = self._context.path_for("requirements.txt")
        lines = [
            f"# Installed in {sys.executable}, captured by Tracelet",
            *(f"{n}=={v}" for n, v in packages.items()),
        ]
        requirements_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return Collected(
            tags=tags,
            artifacts={
                "tracelet/environment.json": environment_path,
                "tracelet/requirements.txt": requirements_path,
            },
        )
