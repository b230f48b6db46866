"""The git collector against real repositories made with the git binary."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracelet_core import errors
from tracelet_core.collectors import CollectorSet, RecordingSink, start_collectors
from tracelet_core.collectors.git import DIFF_ARTIFACT, GitCollector, strip_credentials
from tracelet_core.settings import TraceletSettings

TOKEN = "ghp_s3cr3tT0kenValue"


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Repositories independent of the machine's git configuration."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Tracelet Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("tracelet-collectors")]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on branch main with one commit of two files."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('train')\n")
    (path / "README.md").write_text("# demo\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


def collect(repo_path: Path, run_dir: Path, **kwargs: int) -> RecordingSink:
    sink = RecordingSink(run_dir)
    collectors = CollectorSet(sink, [GitCollector(repo_path, **kwargs)])
    collectors.start()
    collectors.stop()
    return sink


def everything_logged(sink: RecordingSink) -> str:
    files = "".join(path.read_text(errors="replace") for path in sink.artifacts.values())
    return repr(sink.tags) + repr(sink.params) + repr(sink.metrics) + files


def test_clean_repository(repo: Path, tmp_path: Path) -> None:
    sink = collect(repo, tmp_path / "run")
    assert sink.tags == {
        "git.commit": git(repo, "rev-parse", "HEAD"),
        "git.branch": "main",
        "git.dirty": "false",
        "git.untracked": "0",
    }
    assert sink.artifacts == {}


def test_dirty_repository_logs_a_patch_that_applies(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print('train, changed')\n")
    (repo / "staged.py").write_text("x = 1\n")
    git(repo, "add", "staged.py")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "data").mkdir()
    (repo / "data" / "new.csv").write_text("a,b\n")

    sink = collect(repo, tmp_path / "run")

    assert sink.tags["git.dirty"] == "true"
    assert sink.tags["git.untracked"] == "2"
    patch = sink.artifacts[DIFF_ARTIFACT]
    text = patch.read_text()
    assert "+print('train, changed')" in text
    assert "+x = 1" in text, "staged changes are part of the diff"
    assert "notes.txt" not in text, "untracked files are counted, not included"
    # The patch is exactly the uncommitted change: reversing it applies cleanly.
    subprocess.run(["git", "apply", "--check", "-R", str(patch)], cwd=repo, check=True)


def test_detached_head_as_in_ci(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "--detach", "HEAD")
    sink = collect(repo, tmp_path / "run")
    assert sink.tags["git.detached"] == "true"
    assert "git.branch" not in sink.tags
    assert sink.tags["git.commit"] == git(repo, "rev-parse", "HEAD")


def test_remote_credentials_are_stripped_everywhere(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "upstream", "git@github.com:org/upstream.git")
    git(repo, "remote", "add", "origin", f"https://user:{TOKEN}@host.example/x.git")
    (repo / "train.py").write_text("changed\n")
    sink = collect(repo, tmp_path / "run")
    assert sink.tags["git.remote"] == "https://host.example/x.git", "origin is preferred"
    assert TOKEN not in everything_logged(sink)


def test_ssh_remote_is_kept(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", "git@github.com:org/x.git")
    assert collect(repo, tmp_path / "run").tags["git.remote"] == "git@github.com:org/x.git"


def test_repository_is_found_from_a_subdirectory_of_the_working_directory(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "src" / "pkg").mkdir(parents=True)
    monkeypatch.chdir(repo / "src" / "pkg")
    sink = RecordingSink(tmp_path / "run")
    collectors = start_collectors(sink, TraceletSettings(git=True, system_metrics=False, environment=False))
    collectors.stop()
    assert sink.tags["git.commit"] == git(repo, "rev-parse", "HEAD")


def test_large_diff_is_capped_and_says_so(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("".join(f"line {i}\n" for i in range(20_000)))
    sink = collect(repo, tmp_path / "run", diff_cap_bytes=4096)
    data = sink.artifacts[DIFF_ARTIFACT].read_bytes()
    assert len(data) <= 4096
    assert data.startswith(b"# [truncated by Tracelet: the diff is larger than the 4096-byte cap")
    assert data.rstrip().endswith(b"bytes are kept]")
    assert b"+line 10\n" in data


def test_new_repository_without_commits(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q", "-b", "trunk")
    (path / "a.py").write_text("a = 1\n")
    git(path, "add", "a.py")
    sink = collect(path, tmp_path / "run")
    assert sink.tags["git.branch"] == "trunk"
    assert "git.commit" not in sink.tags
    assert sink.tags["git.untracked"] == "0"


def git_notes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("tracelet") and "'git'" in r.getMessage()]


def test_not_a_repository_is_one_note_and_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    caplog.set_level(logging.DEBUG, logger="tracelet")
    plain = tmp_path / "plain"
    plain.mkdir()
    sink = collect(plain, tmp_path / "run")
    assert sink.tags == {} and sink.artifacts == {}
    notes = git_notes(caplog)
    assert len(notes) == 1
    assert "not inside a git repository" in notes[0].getMessage()
    assert not [w for w in recwarn if issubclass(w.category, errors.TraceletWarning)]


@pytest.mark.parametrize("how", ["GitPython finds no git", "git binary gone"])
def test_no_git_binary_is_one_note_and_no_error(
    how: str,
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    if how == "GitPython finds no git":
        # GitPython raises ImportError at import time when it cannot run git.
        monkeypatch.setitem(sys.modules, "git", None)
    else:
        import git as gitpython

        monkeypatch.setattr(gitpython.Git, "GIT_PYTHON_GIT_EXECUTABLE", str(tmp_path / "no-such-git"))
    caplog.set_level(logging.DEBUG, logger="tracelet")
    (repo / "train.py").write_text("changed\n")
    sink = collect(repo, tmp_path / "run")
    assert sink.artifacts == {}
    notes = git_notes(caplog)
    assert len(notes) == 1
    assert "git cannot be run" in notes[0].getMessage()
    assert not [w for w in recwarn if issubclass(w.category, errors.TraceletWarning)]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:token@host/x.git", "https://host/x.git"),
        ("https://token@github.com/org/x.git", "https://github.com/org/x.git"),
        ("http://u:p@ss@host:8080/x.git", "http://host:8080/x.git"),
        ("https://oauth2:glpat-abc@gitlab.example/g/x.git", "https://gitlab.example/g/x.git"),
        ("ssh://git@host/x.git", "ssh://git@host/x.git"),
        ("ssh://git:pw@host:22/x.git", "ssh://git@host:22/x.git"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("https://github.com/org/x.git", "https://github.com/org/x.git"),
        ("/srv/git/x.git", "/srv/git/x.git"),
        ("--uri=https://u:pw@h/p", "--uri=https://h/p"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


# No whitespace or control characters (categories Z, C): a URL ends at them. A user name cannot
# hold ":" (it starts the password); a password may hold "@" and ":" unencoded.
@given(
    user=st.text(st.characters(blacklist_categories=("Z", "C"), blacklist_characters="/?#@:"), max_size=12),
    password=st.text(st.characters(blacklist_categories=("Z", "C"), blacklist_characters="/?#"), min_size=1),
    scheme=st.sampled_from(["https", "http", "git+https", "ssh"]),
)
def test_no_password_survives_stripping(user: str, password: str, scheme: str) -> None:
    stripped = strip_credentials(f"{scheme}://{user}:{password}@host.example/org/x.git")
    kept_user = f"{user}@" if scheme == "ssh" and user else ""
    assert stripped == f"{scheme}://{kept_user}host.example/org/x.git"
