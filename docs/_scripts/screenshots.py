"""Take the docs' screenshots of MLflow's and Aim's own web UIs showing a Tracelet run, in a real browser.

Trains the small regressor of ``render_plots.py`` with ``TraceletLogger(backends=["mlflow", "aim"])``
in a scratch directory, starts ``mlflow server`` on its MLflow store and ``aim up`` on its Aim
repository (127.0.0.1, free ports), opens the run in headless Chromium with the browser code of
the UI tests (``tests/ui``) and writes small palette PNGs::

    docs/images/mlflow.png   the run's "Model metrics" tab in MLflow's UI
    docs/images/aim.png      the run's "Metrics" tab in Aim's UI

Run it from the repository root (about a minute)::

    ./dev.sh screenshots                      # installs chromium and chromium-driver when missing
    python docs/_scripts/screenshots.py       # with the dev install, chromium and chromedriver

W&B's and ClearML's servers cannot run here: ``render_plots.py`` draws their figures from their
offline files. Every server and the browser are stopped before it returns.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parents[1]
sys.path[:0] = [str(ROOT), str(SCRIPTS)]

from render_plots import IMAGES, train  # noqa: E402

from tests.support.mlflow_server import MlflowServer  # noqa: E402
from tests.ui.aim_server import AimServer  # noqa: E402
from tests.ui.aim_ui import AimRunPage  # noqa: E402
from tests.ui.browser import chromium  # noqa: E402
from tests.ui.mlflow_ui import MlflowRunPage  # noqa: E402

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

WIDTH, HEIGHT = 1200, 960
COLORS = 96  # a palette PNG: a UI's flat colours and anti-aliased text stay crisp at a fifth of the size


def save(driver: WebDriver, path: Path) -> int:
    """Screenshot the window (the pointer parked off the charts) as a palette PNG; returns its size in bytes."""
    from PIL import Image
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    park = ActionBuilder(driver)
    park.pointer_action.move_to_location(WIDTH - 1, 1)  # hover shows chart toolbars and tooltips
    park.perform()
    with Image.open(io.BytesIO(driver.get_screenshot_as_png())) as image:
        image.convert("RGB").quantize(colors=COLORS).save(path, optimize=True)
    return path.stat().st_size


def mlflow_screenshot(driver: WebDriver, workdir: Path, run_id: str) -> int:
    from mlflow import MlflowClient

    run = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}").get_run(run_id)
    server = MlflowServer(workdir / "mlflow-server")
    server.root.mkdir()
    (workdir / "mlflow.db").rename(server.root / "mlflow.db")  # the server's store is <root>/mlflow.db
    server.start()
    try:
        page = MlflowRunPage(driver, server.url, run.info.experiment_id, run_id).open()
        page.tidy_for_a_screenshot(run.info.run_name)
        page.open_tab("Model metrics")
        page.line_charts("train/loss")
        return save(driver, IMAGES / "mlflow.png")
    finally:
        server.stop()


def aim_screenshot(driver: WebDriver, workdir: Path, run_hash: str) -> int:
    server = AimServer(workdir, workdir / "aim-up.log").start()
    try:
        page = AimRunPage(driver, server.url, run_hash).open("metrics")
        page.line_charts("loss")
        page.dismiss_popups()
        return save(driver, IMAGES / "aim.png")
    finally:
        server.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tracelet-screenshots-") as scratch:
        workdir = Path(scratch)
        native = train(workdir, ("mlflow", "aim"))
        with chromium(WIDTH, HEIGHT) as driver:
            sizes = {
                "mlflow.png": mlflow_screenshot(driver, workdir, native["mlflow"][0]),
                "aim.png": aim_screenshot(driver, workdir, native["aim"][0]),
            }
    for name, size in sizes.items():
        print(f"docs/images/{name}: {size / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
