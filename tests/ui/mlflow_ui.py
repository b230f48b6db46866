"""A run's page in MLflow's web UI (MLflow 3), read the way a user reads it.

Elements are found by what MLflow's own UI marks for its tests (``data-testid``, ``role="tab"``)
and by what a user sees (a tab's label), not by generated CSS class names. Charts are Plotly
figures: a line chart draws each series as a ``path.js-line`` in the figure's scatter layer, where
a metric with a single step is drawn as bars instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.ui.browser import wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

CLOSE_ASSISTANT = '[data-component-id="mlflow.assistant.chat_panel.close"]'
LINE_SERIES = ".js-plotly-plot .scatterlayer .trace.scatter path.js-line"


class MlflowRunPage:
    """The page of run ``run_id`` (in experiment ``experiment_id``) of the MLflow server at ``url``."""

    def __init__(self, driver: WebDriver, url: str, experiment_id: str, run_id: str, timeout: float = 45.0) -> None:
        self.driver = driver
        self.address = f"{url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        self.timeout = timeout

    def open(self) -> MlflowRunPage:
        self.driver.get(self.address)
        return self

    def header(self, expected: str) -> str:
        """Wait until the page's title (the run name) reads ``expected``; return it."""
        from selenium.webdriver.common.by import By

        def shown(driver: WebDriver) -> str | None:
            text = driver.find_element(By.CSS_SELECTOR, '[data-testid="runs-header"]').text.strip()
            return text if text == expected else None

        return wait_for(self.driver, shown, f"the run name {expected!r} as the page title", self.timeout)

    def field(self, label: str, expected: str) -> str:
        """Wait until the "About this run" field ``label`` (e.g. ``Source``) shows ``expected``; return its text."""
        from selenium.webdriver.common.by import By

        def shown(driver: WebDriver) -> str | None:
            row = driver.find_element(By.CSS_SELECTOR, f'[data-testid="key-value-{label}"]')
            value = row.find_element(By.XPATH, "./*[2]").text.strip()
            return value if expected in value else None

        return wait_for(self.driver, shown, f"{expected!r} in the field {label!r}", self.timeout)

    def open_tab(self, name: str) -> None:
        """Click the run page's tab labelled ``name`` (``Overview``, ``Model metrics``, ``System metrics``…)."""
        from selenium.webdriver.common.by import By

        def tab(driver: WebDriver) -> WebElement | None:
            found = [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]') if t.text.strip() == name]
            return found[0] if found else None

        wait_for(self.driver, tab, f"the tab {name!r}", self.timeout).click()

        def selected(driver: WebDriver) -> bool:
            found = tab(driver)
            return found is not None and found.get_attribute("aria-selected") == "true"

        wait_for(self.driver, selected, f"the tab {name!r} to be selected", self.timeout)

    def line_charts(self, title: str) -> int:
        """Wait until a chart titled ``title`` is drawn with at least one line (two points or more joined);
        return how many line series the tab shows."""
        from selenium.webdriver.common.by import By

        def drawn(driver: WebDriver) -> int | None:
            if title not in driver.find_element(By.TAG_NAME, "main").text:
                return None
            paths = [path.get_attribute("d") or "" for path in driver.find_elements(By.CSS_SELECTOR, LINE_SERIES)]
            return sum("L" in path for path in paths) or None

        return wait_for(self.driver, drawn, f"a line chart of {title!r}", self.timeout)

    def tidy_for_a_screenshot(self, run_name: str) -> None:
        """Show the page as a Lightning user sees it: "Model training" mode (the UI remembers it), no assistant."""
        from selenium.webdriver.common.by import By

        self.header(run_name)
        modes = self.driver.find_elements(By.XPATH, "//*[@role='button'][normalize-space()='Model training']")
        if modes:
            modes[0].click()  # goes to the experiment's runs: come back to the run
            self.open().header(run_name)
        for close in self.driver.find_elements(By.CSS_SELECTOR, CLOSE_ASSISTANT):
            close.click()
