"""Find every code block in the docs and run it, page by page, so that no example rots.

What a fenced block's info string says (the words after the language are invisible in the HTML)::

    ```python                  run (one interpreter per page: later blocks see earlier names)
    ```bash                    run with bash -e in the page's directory; fails on a non-zero exit
    ```python file=train.py    write the block to train.py in the page's directory (checked to compile)
    ```text output             what the block just before it printed: each line, in order, must appear
                               in that output (``...`` matches anything)
    ```yaml / toml / json      parsed (or written, with file=NAME)
    ```ini file=.env           written (without file=: each line must be KEY=VALUE)
    ```bash no-run: needs Docker    not run; listed with its reason in the test's report

``text`` blocks without ``output`` are illustrations (diagrams, file listings) and are not code.

Each page runs in a fresh temporary directory with a fresh environment: HOME and the XDG folders
inside it, no ``TRACELET_*``/``MLFLOW_*``/``WANDB_*``/``CLEARML_*``/``AIM_*`` variable from the
caller, telemetry off, W&B offline. Run the docs' blocks by hand with::

    python docs/_ext/codeblocks.py                 # every page
    python docs/_ext/codeblocks.py quickstart.md   # one page (path relative to docs/)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"_build", "_ext", "_scripts"}
RUN_LANGUAGES = {"python", "bash"}
PARSE_LANGUAGES = {"yaml", "toml", "json", "ini"}
TEXT_LANGUAGES = {"text", ""}
_SDK_PREFIXES = ("TRACELET_", "MLFLOW_", "WANDB_", "CLEARML_", "AIM_", "TRAINS_")
_DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:")
OUTPUT_LIMIT = 20_000


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    code: str
    no_run: bool = False
    reason: str = ""
    file: str | None = None
    output: bool = False

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_code(self) -> bool:
        return self.language not in TEXT_LANGUAGES


def parse_info(info: str) -> dict[str, Any]:
    """Split a fence's info string into language and markers.

    Example:
        >>> parse_info("bash no-run: needs Docker")
        {'language': 'bash', 'no_run': True, 'reason': 'needs Docker', 'file': None, 'output': False}
        >>> parse_info("python file=train.py")["file"]
        'train.py'
    """
    language, _, rest = info.strip().partition(" ")
    no_run, reason, file, output = False, "", None, False
    marker = re.search(r"\bno-run\b:?\s*(.*)$", rest)
    if marker:
        no_run, reason = True, marker.group(1).strip()
        rest = rest[: marker.start()]
    for word in rest.split():
        if word.startswith("file="):
            file = word.removeprefix("file=")
        elif word == "output":
            output = True
    return {"language": language.lower(), "no_run": no_run, "reason": reason, "file": file, "output": output}


def _markdown_blocks(page: str, text: str, line_offset: int = 0) -> list[Block]:
    from markdown_it import MarkdownIt

    blocks: list[Block] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or token.map is None:
            continue
        line = token.map[0] + 1 + line_offset
        info = token.info.strip()
        if info.startswith("{"):
            name, _, argument = info.partition(" ")
            if name in ("{code-block}", "{code}", "{sourcecode}"):
                body = "\n".join(x for x in token.content.splitlines() if not _DIRECTIVE_OPTION.match(x))
                blocks.append(Block(page, line, **{**parse_info(argument), "code": body.strip("\n") + "\n"}))
            elif name not in ("{toctree}", "{eval-rst}", "{tracelet-settings}", "{tracelet-cli}", "{image}"):
                # An admonition or other directive: its content is Markdown and may hold code.
                blocks.extend(_markdown_blocks(page, token.content, line))
            continue
        blocks.append(Block(page, line, code=token.content, **parse_info(info)))
    return blocks


def _rst_blocks(page: str, text: str) -> list[Block]:
    blocks = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)\.\. (?:code-block|code|sourcecode):: *(\S*)", line)
        if not match:
            continue
        indent = len(match.group(1))
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        code = "\n".join(x for x in body if not _DIRECTIVE_OPTION.match(x.strip()))
        import textwrap

        blocks.append(Block(page, index + 1, match.group(2).lower(), textwrap.dedent(code).strip("\n") + "\n"))
    return blocks


def pages(docs: Path = DOCS) -> list[Path]:
    """Every Markdown and reStructuredText page of the docs, sorted."""
    found = [
        path
        for path in sorted(docs.rglob("*"))
        if path.suffix in (".md", ".rst") and not SKIP_DIRS.intersection(path.relative_to(docs).parts)
    ]
    return found


def extract(path: Path, docs: Path = DOCS) -> list[Block]:
    """The code blocks of one page, in document order."""
    page = str(path.relative_to(docs))
    text = path.read_text(encoding="utf-8")
    return _markdown_blocks(page, text) if path.suffix == ".md" else _rst_blocks(page, text)


# -- running one page (in a subprocess of its own) ------------------------------------------------


def output_mismatch(expected: str, actual: str) -> str | None:
    """None when every expected line appears in ``actual``, in order; else the first line that does not.

    Example:
        >>> output_mismatch("a ...\\nc", "a b\\nx\\nc\\n") is None
        True
        >>> output_mismatch("c\\na", "a\\nc")
        'a'
    """
    lines = [line.rstrip() for line in actual.splitlines()]
    position = 0
    for wanted in (line.rstrip() for line in expected.splitlines()):
        if not wanted.strip():
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return wanted
        position += 1
    return None


class _Tee(io.StringIO):
    """Keeps what a block prints and passes it on."""

    def __init__(self, passthrough: Any) -> None:
        super().__init__()
        self._passthrough = passthrough

    def write(self, text: str) -> int:
        self._passthrough.write(text)
        return super().write(text)


def _run_python(code: str, namespace: dict[str, Any], where: str) -> str:
    tee = _Tee(sys.__stdout__)
    with contextlib.redirect_stdout(tee):
        exec(compile(code, where, "exec"), namespace)
    sys.stdout.flush()
    return tee.getvalue()


def _run_bash(code: str, where: str) -> str:
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{where}: exit status {proc.returncode}\n{proc.stdout[-OUTPUT_LIMIT:]}")
    return proc.stdout


def _parse(block: Block) -> None:
    if block.language == "yaml":
        import yaml

        yaml.safe_load(block.code)
    elif block.language == "toml":
        import tomllib  # Python 3.11+; the docs are built and tested on 3.11

        tomllib.loads(block.code)
    elif block.language == "json":
        json.loads(block.code)
    elif block.language == "ini":
        for line in block.code.splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" not in line:
                raise ValueError(f"{block.where}: {line!r} is not KEY=VALUE")


def run_page_blocks(blocks: list[Block]) -> None:
    """Run a page's blocks in order in this process (whose cwd is the page's directory)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    last_output: str | None = None
    for block in blocks:
        if block.no_run:
            continue
        print(f"\n### {block.where} ({block.language}{' file=' + block.file if block.file else ''})", flush=True)
        if block.output:
            if last_output is None:
                raise RuntimeError(f"{block.where}: an output block must follow a block that runs")
            missing = output_mismatch(block.code, last_output)
            if missing is not None:
                raise AssertionError(
                    f"{block.where}: the output shown in the docs is not what the block before printed; "
                    f"no line matches {missing!r} (in order). It printed:\n{last_output[-OUTPUT_LIMIT:]}"
                )
            continue
        if block.file:
            target = Path(block.file)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            if block.language == "python":
                compile(block.code, block.where, "exec")
            elif block.language in PARSE_LANGUAGES:
                _parse(block)
            continue
        if block.language == "python":
            last_output = _run_python(block.code, namespace, block.where)
        elif block.language == "bash":
            last_output = _run_bash(block.code, block.where)
        elif block.language in PARSE_LANGUAGES:
            _parse(block)
        elif block.is_code:
            raise ValueError(f"{block.where}: don't know how to run a {block.language!r} block; mark it no-run")


def _page_main(page_file: str) -> int:
    blocks = [Block(**item) for item in json.loads(Path(page_file).read_text())]
    sys.path[0] = os.getcwd()  # as for a script in the page's directory: its files are importable
    try:
        run_page_blocks(blocks)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # leave at once: a half-run page may hold threads that would keep it alive
    sys.stdout.flush()
    return 0


# -- running every page ---------------------------------------------------------------------------


def fresh_env(workdir: Path) -> dict[str, str]:
    """The environment a page runs in: nothing of the caller's tracker settings, everything under ``workdir``."""
    home = workdir.parent / (workdir.name + "-home")
    for sub in (".config", ".cache", ".local/share"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SDK_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        PYTHONUNBUFFERED="1",
        COLUMNS="120",
        OMP_NUM_THREADS="1",
    )
    return env


@dataclass
class PageResult:
    page: str
    ran: int
    skipped: list[str]
    seconds: float
    ok: bool
    log: str = field(repr=False)


def mlflow_template(scratch: Path) -> Path | None:
    """An initialised, empty MLflow SQLite store to put in each page's directory as ``mlflow.db``.

    A new store costs seconds of schema migrations on first use; a copy of an initialised one costs
    nothing, and MLflow's default store (``mlflow.db`` in the working directory) is used all the same.
    """
    template = scratch / "mlflow-template.db"
    if not template.exists():
        workdir = scratch / "mlflow-template"
        workdir.mkdir(parents=True, exist_ok=True)
        code = "from mlflow import MlflowClient; MlflowClient('sqlite:///t.db').search_experiments()"
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=workdir, env=fresh_env(workdir), capture_output=True, timeout=120
        )
        if proc.returncode != 0:
            return None  # no MLflow here: pages make their own store, or do not use one
        shutil.move(workdir / "t.db", template)
    return template


def run_page(
    path: Path, scratch: Path, timeout: float = 300.0, docs: Path = DOCS, mlflow_db: Path | None = None
) -> PageResult:
    """Run one page's blocks in a fresh directory and environment; never raises for a failing block."""
    blocks = extract(path, docs)
    page = str(path.relative_to(docs))
    runnable = [b for b in blocks if b.is_code and not b.no_run]
    skipped = [f"{b.where} ({b.language}): {b.reason or 'no reason given'}" for b in blocks if b.no_run]
    if not runnable:
        return PageResult(page, 0, skipped, 0.0, True, "")
    workdir = scratch / re.sub(r"\W+", "_", page)
    workdir.mkdir(parents=True)
    if mlflow_db is not None:
        shutil.copyfile(mlflow_db, workdir / "mlflow.db")
    spec = workdir.parent / (workdir.name + "-blocks.json")
    spec.write_text(json.dumps([asdict(b) for b in blocks]))
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--page-file", str(spec)],
            cwd=workdir,
            env=fresh_env(workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
        ok, log = proc.returncode == 0, proc.stdout
    except subprocess.TimeoutExpired as exc:
        ok, log = False, f"timed out after {timeout:.0f}s\n{exc.stdout or ''}"
    ran = sum(1 for b in runnable if not b.output)
    return PageResult(page, ran, skipped, time.monotonic() - started, ok, log)


def run_all(paths: list[Path], scratch: Path, workers: int = 3, docs: Path = DOCS) -> list[PageResult]:
    """Run several pages side by side (each in its own process); results in the order of ``paths``.

    Pages with the most blocks to run start first, so that the longest ones do not start last.
    """
    template = mlflow_template(scratch)

    def weight(path: Path) -> int:
        return sum(1 for b in extract(path, docs) if b.language in RUN_LANGUAGES and not (b.no_run or b.file))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            path: pool.submit(run_page, path, scratch, docs=docs, mlflow_db=template)
            for path in sorted(paths, key=weight, reverse=True)
        }
        return [futures[path].result() for path in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("pages", nargs="*", help="pages relative to docs/ (default: all)")
    parser.add_argument("--page-file", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args(argv)
    if args.page_file:
        return _page_main(args.page_file)
    paths = [DOCS / p for p in args.pages] if args.pages else pages()
    scratch = Path(tempfile.mkdtemp(prefix="tracelet-docs-"))
    try:
        results = run_all(paths, scratch, args.workers)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    for result in results:
        status = "ok" if result.ok else "FAILED"
        print(f"{status:6} {result.page}: {result.ran} run, {len(result.skipped)} not run, {result.seconds:.1f}s")
        for item in result.skipped:
            print(f"         not run: {item}")
        if not result.ok:
            print(result.log[-OUTPUT_LIMIT:])
    if args.keep:
        print(f"scratch kept in {scratch}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
