"""The public surface: what `import tracelet_core` exposes, and what it must not import."""

from __future__ import annotations

import subprocess
import sys

import tracelet_core
import tracelet_lightning

HEAVY = ("lightning", "pytorch_lightning", "torch", "mlflow", "wandb", "clearml", "aim", "tensorboard", "tensorboardX")


def test_import_tracelet_core_loads_no_framework_and_no_tracker_sdk() -> None:
    code = f"import sys, tracelet_core; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_tracelet_core_never_imports_lightning() -> None:
    """The core is framework-free: no module under tracelet_core mentions lightning in an import."""
    from pathlib import Path

    root = Path(tracelet_core.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(("import lightning", "from lightning", "import pytorch_lightning"))
    ]
    assert offenders == []


def test_public_names() -> None:
    assert sorted(tracelet_core.__all__) == sorted(
        [
            "ArtifactRef",
            "Backend",
            "BackendError",
            "BackendReport",
            "BackendUnavailableError",
            "Batch",
            "Capabilities",
            "Collected",
            "Collector",
            "ConfigurationError",
            "DeliveryReport",
            "ErrorKind",
            "JournalError",
            "MediaItem",
            "MetricPoint",
            "PermanentDeliveryError",
            "Run",
            "RunInUseError",
            "RunInfo",
            "RunStatus",
            "TensorBoardPatch",
            "TraceletError",
            "TraceletSettings",
            "TraceletWarning",
            "Tracker",
            "TrackerConfigurationError",
            "__version__",
            "get_active_run",
            "patch_tensorboard",
            "register_backend",
            "register_collector",
            "register_tracker",
            "start_logging",
            "stop_logging",
            "unpatch_tensorboard",
        ]
    )
    for name in tracelet_core.__all__:
        assert hasattr(tracelet_core, name), name
    assert sorted(tracelet_lightning.__all__) == ["TraceletCallback", "TraceletLogger", "checkpoint_run_id"]
