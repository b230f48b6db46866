"""Finding an Aim repository's root, and a run in it that Tracelet opened and did not finish."""

from __future__ import annotations

from pathlib import Path

__all__ = ["local_repo", "unfinished_run"]


def local_repo(repo: str | None) -> Path | None:
    """The root of a local repository (Aim's default when None), or None for ``aim://``/``ssh://``."""
    from aim.sdk.repo import Repo
    from aim.sdk.utils import clean_repo_path

    path = repo or Repo.default_repo_path()
    if Repo.is_remote_path(path) or path.startswith("ssh://"):
        return None
    return Path(clean_repo_path(path))


def unfinished_run(aim_dir: Path, run_id: str, since: float) -> str | None:
    """The hash of an unfinished run of the repository ``aim_dir`` whose ``tracelet.run_id`` is ``run_id``."""
    from aim.storage.rockscontainer import RocksContainer

    progress = aim_dir / "meta" / "progress"
    candidates = progress.iterdir() if progress.is_dir() else iter(())
    for flag in candidates:
        try:
            if flag.stat().st_mtime < since:  # last touched before this run started
                continue
            container = RocksContainer(str(aim_dir / "meta" / "chunks" / flag.name), read_only=True)
        except Exception:  # removed meanwhile, or not a run Aim can open: not the one looked for
            continue
        try:
            tree = container.tree().subtree(("meta", "chunks", flag.name))
            # end_time is None until the run is closed; a closed run's flag may linger a moment.
            if tree.get("end_time") is None and tree.collect(("attrs", "tracelet", "run_id")) == run_id:
                return flag.name
        except Exception:  # no Tracelet run id: another tool's run
            continue
        finally:
            container.close()
    return None
