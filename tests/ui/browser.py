"""Headless Chromium for the UI tests and the docs' screenshots: Debian's ``chromium`` and ``chromedriver``,
driven by Selenium.

``./dev.sh test`` installs the two packages when they are missing (``apt-get install chromium
chromium-driver``) and Selenium comes with the ``dev`` extra. Chromium is started the way this
machine allows: headless, without a sandbox (tests may run as root), and without any of its
background connections (update checks, sync, field trials), which a closed network refuses.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

T = TypeVar("T")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
)


def executables() -> tuple[str | None, str | None]:
    """Chromium and chromedriver on PATH (Debian's packages install both into /usr/bin)."""
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


def missing() -> str | None:
    """Why no browser can be started here (None when one can)."""
    chromium, driver = executables()
    needed = [name for name, path in (("chromium", chromium), ("chromium-driver", driver)) if path is None]
    if needed:
        return f"no {' or '.join(needed)}: ./dev.sh test installs them (apt-get install -y chromium chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "no selenium: pip install -e '.[dev]'"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium whose pages are ``width`` × ``height`` CSS pixels, with a fresh profile; closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = executables()
    if binary is None or driver_path is None:
        raise RuntimeError(missing())
    profile = Path(tempfile.mkdtemp(prefix="tracelet-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # An explicit chromedriver: Selenium then never runs its driver manager (which would go online).
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        # --window-size counts the window's frame: grow the window until the page itself is that size.
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
        yield driver
    finally:
        driver.quit()  # ends chromium and chromedriver
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T | None], what: str, timeout: float = 45.0) -> T:
    """Poll ``condition`` until it returns something truthy; on timeout fail with what the page showed."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # A React page replaces elements as it renders: an element gone between finding and reading it is retried.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=ignored).until(condition)
    except TimeoutException:
        text = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what} at {driver.current_url}; the page showed:\n"
            f"{text[:3000]}"
        ) from None
