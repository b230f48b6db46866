"""The documentation builds warning-free, its API examples pass, and every code block in it runs.

The Sphinx build and the code blocks run side by side (each page's blocks in a process of its own,
in a fresh directory and environment; see ``docs/_ext/codeblocks.py``). Skipped, with the reason,
only when Sphinx and its extensions are not installed (the ``dev`` and ``docs`` extras install them).
"""

from __future__ import annotations

import concurrent.futures
import doctest
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOCS_PACKAGES = ("sphinx", "myst_parser", "furo")
MISSING = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the docs need {', '.join(MISSING)}: pip install -e '.[docs]' (the dev extra includes it)",
)

if str(DOCS / "_ext") not in sys.path:
    sys.path.insert(0, str(DOCS / "_ext"))

import codeblocks  # noqa: E402

IMAGE_BUDGET = 200 * 1024
# Every page's blocks together: about 3 minutes on two busy cores (the DDP, resume and troubleshooting
# pages train for real); pytest's default limit per test (300 s) would leave no margin.
BLOCKS_TIMEOUT = 540


def _sphinx(builder: str, out: Path, doctrees: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, "-d", str(doctrees)]
    return subprocess.Popen(
        [*command, str(DOCS), str(out / builder)],
        cwd=out,
        env=codeblocks.fresh_env(out),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Builds:
    """The HTML build and the code blocks, started together; each test waits for the part it checks."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.out = scratch / "site"
        self.out.mkdir()
        self.doctrees = scratch / "doctrees"
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._blocks = self._pool.submit(codeblocks.run_all, codeblocks.pages(), scratch / "blocks", 3)
        self._html = _sphinx("html", self.out, self.doctrees)

    def html(self) -> tuple[int, str]:
        output, _ = self._html.communicate(timeout=240)
        return self._html.returncode, output

    def doctest(self) -> tuple[int, str]:
        self.html()  # reuse its doctrees: the doctest build then reads nothing again
        proc = _sphinx("doctest", self.out, self.doctrees)
        output, _ = proc.communicate(timeout=240)
        return proc.returncode, output

    def blocks(self) -> list[codeblocks.PageResult]:
        return self._blocks.result(timeout=BLOCKS_TIMEOUT)

    def close(self) -> None:
        if self._html.poll() is None:
            self._html.kill()
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    started = Builds(tmp_path_factory.mktemp("docs"))
    try:
        yield started
    finally:
        started.close()


def test_the_site_builds_without_a_warning(builds: Builds) -> None:
    code, output = builds.html()
    assert code == 0, f"sphinx-build -W -b html failed:\n{output}"
    assert (builds.out / "html" / "index.html").is_file()


def test_the_configuration_reference_lists_every_setting(builds: Builds) -> None:
    from tracelet_docs import env_variable, settings_sections

    from tracelet_core import TraceletSettings

    assert builds.html()[0] == 0
    page = (builds.out / "html" / "configuration.html").read_text(encoding="utf-8")
    sections = settings_sections(TraceletSettings)
    nested = {name for name, _, _ in sections}
    expected = [env_variable(name) for name in TraceletSettings.model_fields if name not in nested]
    for section, model, _ in sections:
        expected += [env_variable(section, name) for name in model.model_fields]
    missing = [variable for variable in expected if variable not in page]
    assert not missing, f"configuration.html lacks {missing}"


def test_the_api_reference_is_exactly_all(builds: Builds) -> None:
    assert builds.html()[0] == 0
    page = (builds.out / "html" / "api.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'id="(tracelet_(?:core|lightning)\.[A-Za-z_]+)"', page))
    for package in ("tracelet_core", "tracelet_lightning"):
        public = {f"{package}.{name}" for name in importlib.import_module(package).__all__}
        here = {name for name in documented if name.startswith(package + ".")}
        assert here == public, f"{package}: missing {sorted(public - here)}, extra {sorted(here - public)}"


def test_the_cli_reference_has_every_command(builds: Builds) -> None:
    from tracelet_docs import cli_commands

    assert builds.html()[0] == 0
    page = (builds.out / "html" / "cli.html").read_text(encoding="utf-8")
    for name in cli_commands():
        assert f"tracelet {name} [OPTIONS]" in page, f"no usage of `tracelet {name}` in cli.html"


def test_the_api_examples_pass(builds: Builds) -> None:
    code, output = builds.doctest()
    assert code == 0, f"sphinx-build -b doctest failed:\n{output}"
    report = (builds.out / "doctest" / "output.txt").read_text(encoding="utf-8")
    tried = re.search(r"(\d+) tests?", report)
    assert tried and int(tried.group(1)) > 0, report


@pytest.mark.timeout(BLOCKS_TIMEOUT + 60)
def test_every_code_block_runs(builds: Builds, capsys: pytest.CaptureFixture[str]) -> None:
    results = builds.blocks()
    failed = [r for r in results if not r.ok]
    ran = sum(r.ran for r in results)
    skipped = [item for r in results for item in r.skipped]
    with capsys.disabled():
        print(f"\ndocs code blocks: {ran} run, {len(skipped)} not run (marked no-run):")
        for result in results:
            print(f"  {result.page}: {result.ran} run in {result.seconds:.1f}s")
        for item in skipped:
            print(f"  not run: {item}")
    assert not failed, "\n\n".join(f"{r.page} failed:\n{r.log[-codeblocks.OUTPUT_LIMIT :]}" for r in failed)
    assert ran >= 30, f"only {ran} code blocks ran: is the extraction broken?"


def test_every_block_is_runnable_or_says_why_not() -> None:
    blocks = [block for page in codeblocks.pages() for block in codeblocks.extract(page)]
    known = codeblocks.RUN_LANGUAGES | codeblocks.PARSE_LANGUAGES | codeblocks.TEXT_LANGUAGES
    unknown = [f"{b.where}: {b.language!r}" for b in blocks if b.language not in known and not b.no_run]
    assert not unknown, f"blocks in a language the runner cannot run; mark them no-run with a reason: {unknown}"
    silent = [b.where for b in blocks if b.no_run and not b.reason]
    assert not silent, f"no-run blocks must say why: {silent}"
    orphans = [b.where for b in blocks if b.output and b.language not in codeblocks.TEXT_LANGUAGES]
    assert not orphans, f"only text blocks can be outputs: {orphans}"


def test_images_are_small_and_used() -> None:
    images = sorted((DOCS / "images").glob("*.png"))
    assert images, "docs/images holds no figure: run python docs/_scripts/render_plots.py"
    total = sum(image.stat().st_size for image in images)
    assert total < IMAGE_BUDGET, f"docs/images weighs {total / 1024:.0f} KiB (budget {IMAGE_BUDGET // 1024} KiB)"
    text = "\n".join(page.read_text(encoding="utf-8") for page in codeblocks.pages())
    unused = [image.name for image in images if f"images/{image.name}" not in text]
    assert not unused, f"images no page shows: {unused}"


@pytest.mark.parametrize("module", ["codeblocks", "tracelet_docs"])
def test_the_docs_tooling_examples(module: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(module), verbose=False)
    assert tried > 0 and failures == 0


def test_a_shown_output_must_match() -> None:
    assert codeblocks.output_mismatch("tracelet: run ... FINISHED", "x\ntracelet: run 3f FINISHED\n") is None
    assert codeblocks.output_mismatch("a\nb", "b\na") == "b"
    assert os.sep not in codeblocks.parse_info("python file=a.py")["language"]
