"""A run's page in Aim's web UI (``aim up``, Aim 3.29), read the way a user reads it.

Aim draws its charts as SVG with d3: each series is a ``path.Line``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.ui.browser import wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

SKIP_COMMUNITY_POPUP = ".CommunityPopup__tooltip__footer__skipBtn"


class AimRunPage:
    """The page of the run ``run_hash`` in the Aim UI at ``url``."""

    def __init__(self, driver: WebDriver, url: str, run_hash: str, timeout: float = 45.0) -> None:
        self.driver = driver
        self.address = f"{url.rstrip('/')}/runs/{run_hash}"
        self.timeout = timeout

    def open(self, tab: str = "overview") -> AimRunPage:
        """Open the run on ``tab`` (``overview``, ``metrics``, ``system``…: the tab's name in the address)."""
        self.driver.get(f"{self.address}/{tab}")
        return self

    def line_charts(self, title: str) -> int:
        """Wait until a chart of ``title`` is drawn with lines; return how many series the page shows."""
        from selenium.webdriver.common.by import By

        def drawn(driver: WebDriver) -> int | None:
            if title not in driver.find_element(By.TAG_NAME, "body").text:
                return None
            paths = [path.get_attribute("d") or "" for path in driver.find_elements(By.CSS_SELECTOR, "path.Line")]
            return sum("L" in path for path in paths) or None

        return wait_for(self.driver, drawn, f"a line chart of {title!r}", self.timeout)

    def dismiss_popups(self) -> None:
        """Close Aim's "join the community" invitation, which covers the bottom left of a fresh profile's page."""
        from selenium.webdriver.common.by import By

        for skip in self.driver.find_elements(By.CSS_SELECTOR, SKIP_COMMUNITY_POPUP):
            skip.click()
