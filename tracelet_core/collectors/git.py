"""The git state of the code being run, as ``git.*`` tags and the ``tracelet/git_diff.patch`` artifact.

Tags: ``git.commit``, ``git.branch`` (or ``git.detached = "true"`` on a detached HEAD, as in most CI
checkouts), ``git.dirty`` (uncommitted changes to tracked files), ``git.untracked`` (how many
untracked files), ``git.remote`` (``origin``, else the first remote; credentials removed). The diff
of the working tree against HEAD is logged when there is one, cut at ``diff_cap_bytes`` (1 MiB by
default) with a note at its top and end that says so. Untracked files are counted, not included.

The repository is found from the working directory upwards. Outside a repository, or without a
git binary, the collector is skipped with one INFO log line. GitPython is imported when the
collector runs, never when this module is imported.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tracelet_core.collectors.base import Collected, Collector, CollectorContext, CollectorUnavailableError

__all__ = ["DEFAULT_DIFF_CAP_BYTES", "GitCollector", "strip_credentials"]

logger = logging.getLogger("tracelet.collectors")

DEFAULT_DIFF_CAP_BYTES = 1 << 20
DIFF_ARTIFACT = "tracelet/git_diff.patch"

# scheme://userinfo@host... ; the userinfo runs to the LAST "@" before the path, so that an
# unencoded "@" inside a password does not leave the rest of the password behind.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#]*)@")
_SSH_SCHEMES = {"ssh://", "git+ssh://", "ssh+git://"}


def strip_credentials(text: str) -> str:
    """Remove the credentials from every URL in ``text``.

    For ssh URLs the user name is kept (it names an account, not a secret) and a password removed;
    for every other scheme the whole ``user:password@`` part goes, since tokens are often put in
    the user name. scp-like ``git@host:org/repo.git`` has no password and stays as it is.

    Example:
        >>> strip_credentials("https://user:token@github.com/org/x.git")
        'https://github.com/org/x.git'
        >>> strip_credentials("ssh://git:pw@host/x.git"), strip_credentials("git@github.com:org/x.git")
        ('ssh://git@host/x.git', 'git@github.com:org/x.git')
    """

    def replace(match: re.Match[str]) -> str:
        scheme = match["scheme"]
        if scheme.lower() in _SSH_SCHEMES:
            user = match["userinfo"].split(":", 1)[0]
            return f"{scheme}{user}@" if user else scheme
        return scheme

    return _URL_USERINFO.sub(replace, text)


def _cap_note(cap: int, kept: int) -> bytes:
    return (
        f"# [truncated by Tracelet: the diff is larger than the {cap}-byte cap; only its first {kept} bytes are kept]\n"
    ).encode()


class GitCollector(Collector):
    """Commit, branch, dirty state, untracked count, remote and uncommitted diff of the repository.

    Args:
        path: where to look for the repository; the working directory when None.
        diff_cap_bytes: the most bytes of diff kept in ``tracelet/git_diff.patch``.

    Raises:
        CollectorUnavailableError: from ``collect``, outside a repository or without git.

    Example:
        >>> import tempfile
        >>> collector = GitCollector(tempfile.mkdtemp())
        >>> collector.start(CollectorContext(Path(tempfile.mkdtemp())))
        >>> collector.collect()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tracelet_core.collectors.base.CollectorUnavailableError: ... is not inside a git repository; ...recorded.
    """

    name = "git"

    def __init__(self, path: str | Path | None = None, diff_cap_bytes: int = DEFAULT_DIFF_CAP_BYTES) -> None:
        self._path = path
        self.diff_cap_bytes = diff_cap_bytes
        self._context: CollectorContext | None = None

    def start(self, context: CollectorContext) -> None:
        self._context = context

    def collect(self) -> Collected:
        path = Path(self._path) if self._path is not None else Path.cwd()
        try:
            import git
        except ImportError as exc:  # GitPython raises ImportError when it finds no git binary
            raise CollectorUnavailableError(f"git cannot be run ({exc}); no git state recorded.", logging.INFO) from exc
        try:
            repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise CollectorUnavailableError(
                f"{path} is not inside a git repository; no git state recorded.", logging.INFO
            ) from exc
        try:
            # Reading state must not take .git/index.lock from under a user running git meanwhile.
            repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")
            return self._describe(repo)
        except git.GitCommandNotFound as exc:
            raise CollectorUnavailableError(f"git cannot be run ({exc}); no git state recorded.", logging.INFO) from exc
        finally:
            repo.close()  # ends the git cat-file processes GitPython keeps open

    def _describe(self, repo: Any) -> Collected:
        tags: dict[str, str] = {}
        artifacts: dict[str, Path] = {}
        if repo.head.is_detached:
            tags["git.detached"] = "true"
        else:
            tags["git.branch"] = repo.active_branch.name
        has_commit = repo.head.is_valid()  # False on a new repository's unborn branch
        if has_commit:
            tags["git.commit"] = repo.head.commit.hexsha
        remote = self._remote_url(repo)
        if remote is not None:
            tags["git.remote"] = strip_credentials(remote)
        if not repo.bare:
            dirty = repo.is_dirty(index=True, working_tree=True, untracked_files=False)
            tags["git.dirty"] = "true" if dirty else "false"
            tags["git.untracked"] = str(len(repo.untracked_files))
            if dirty:
                patch = self._write_diff(repo, has_commit)
                if patch is not None:
                    artifacts[DIFF_ARTIFACT] = patch
        return Collected(tags=tags, artifacts=artifacts)

    @staticmethod
    def _remote_url(repo: Any) -> str | None:
        remotes = list(repo.remotes)
        if not remotes:
            return None
        remote = next((r for r in remotes if r.name == "origin"), remotes[0])
        try:
            return str(remote.url)
        except Exception:  # a remote section without a url; not worth a warning
            logger.debug("Tracelet could not read the url of git remote %r", remote.name, exc_info=True)
            return None

    def _write_diff(self, repo: Any, has_commit: bool) -> Path | None:
        """Write ``git diff HEAD`` (staged and unstaged changes) to a file, reading at most the cap."""
        if self._context is None:
            raise RuntimeError("GitCollector.start() must be called before collect()")
        command = [
            repo.git.GIT_PYTHON_GIT_EXECUTABLE or "git",
            "-C",
            str(repo.working_tree_dir),
            "diff",
            "--no-color",
            "--no-ext-diff",  # no user-configured diff programs
            "--no-textconv",
            "HEAD" if has_commit else "--cached",
        ]
        cap = self.diff_cap_bytes
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env) as proc:
            assert proc.stdout is not None
            data = proc.stdout.read(cap + 1)  # never holds more than the cap in memory
            truncated = len(data) > cap
            if truncated:
                proc.kill()
        if not truncated and proc.returncode != 0:
            logger.debug("Tracelet: git diff exited with %s; no diff recorded", proc.returncode)
            return None
        if not data:
            return None
        if truncated:
            # The notes count against the cap: the file itself is never larger than the cap.
            budget = max(0, cap - 2 * len(_cap_note(cap, cap)) - 1)
            kept = data[:budget]
            cut = kept.rfind(b"\n")
            kept = kept[: cut + 1] if cut >= 0 else kept + b"\n"
            note = _cap_note(cap, len(kept))
            data = note + kept + note
        path = self._context.path_for("git_diff.patch")
        path.write_bytes(data)
        return path
