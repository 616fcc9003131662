"""The dashboard in a real browser (headless Chromium) against a real ``taskq serve``
with an API key: one browser and one server for the module, a handful of tests.

Screenshots of the overview, a task and the dead letters go to
``TASKQ_UI_SCREENSHOTS`` when set (``docs/images`` to refresh the README's), else to a
temporary directory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import start_chromium, why_no_browser
from tests.support.processes import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEY = "browser-test-key-0123456789"
WAIT_SECONDS = 15
REFRESH_SECONDS = 0.5
"""The overview fetches its figures this often: one chart interval."""
CHART_INTERVALS = 24
"""Intervals the overview's chart shows before its screenshot is taken."""
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    reason = why_no_browser()
    if reason is not None:
        print(f"browser tests skipped: {reason}")
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("ui")
    env = {
        "TASKQ_BACKEND": "sqlite",
        "TASKQ_SQLITE_PATH": str(tmp / "taskq.db"),
        "TASKQ_API_KEYS": KEY,
        "TASKQ_HANDLERS": "tests.e2e.ui_handlers",
        "WORKER_COUNT": "4",
        "TASKQ_POLL_WAIT_SECONDS": "1",
        "TASKQ_UI_REFRESH_SECONDS": str(REFRESH_SECONDS),
    }
    with running_server(tmp, env=env) as running:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=10) as api:
            yield running.url, api


@pytest.fixture(scope="module")
def browser(server: tuple[str, httpx.Client]) -> Iterator[Any]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TASKQ_UI_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def wait_for(driver: Any, condition: Any, timeout: float = WAIT_SECONDS) -> Any:
    """``condition(driver)`` once true; a page still loading is waited through."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    loading = (NoSuchElementException, StaleElementReferenceException)
    wait = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=loading)
    return wait.until(condition)


def shows(css: str, text: str) -> Any:
    """A condition: the element at ``css`` holds ``text``."""
    return lambda driver: text in text_of(driver, css)


def text_of(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def log_in(driver: Any, url: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/ui/login")
    driver.find_element(By.ID, "key").send_keys(key)
    click(driver, "#login")


def submit(api: httpx.Client, **task: Any) -> str:
    response = api.post("/tasks", json=task)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_wrong_key_is_refused(browser: Any, server: tuple[str, httpx.Client]) -> None:
    url, _ = server
    log_in(browser, url, "not-the-key")

    wait_for(browser, shows("#login-error", "not valid"))
    browser.get(url + "/ui")
    assert browser.current_url.endswith("/ui/login")


def test_the_overview_counts_change_without_a_reload(
    browser: Any, server: tuple[str, httpx.Client], shots: Path
) -> None:
    url, api = server
    log_in(browser, url, KEY)
    wait_for(browser, lambda d: d.current_url.endswith("/ui"))
    before = int(text_of(browser, '[data-field="completed_tasks"]'))
    browser.execute_script("window.taskqSamePage = true")

    for n in range(3):
        submit(api, type="email", payload=f"user{n}@example.com")
    wait_for(
        browser,
        lambda d: int(text_of(d, '[data-field="completed_tasks"]')) >= before + 3,
    )

    assert browser.execute_script("return window.taskqSamePage") is True  # no reload

    with tasks_flowing(api):
        wait_for(browser, lambda d: _busy_intervals(d) >= CHART_INTERVALS, timeout=30)
    browser.save_screenshot(str(shots / "overview.png"))


def test_a_failed_task_shows_its_traceback_and_completes_after_a_retry(
    browser: Any, server: tuple[str, httpx.Client], shots: Path, tmp_path: Path
) -> None:
    url, api = server
    gate = tmp_path / "gate"
    task_id = submit(api, type="gated", payload={"gate": str(gate)}, max_attempts=1)
    browser.get(f"{url}/ui/tasks/{task_id}")
    wait_for(browser, lambda d: _reloaded_until(d, "FAILED"))

    assert "gate" in text_of(browser, "#last-error")
    assert "PermanentTaskError" in text_of(browser, "#traceback")
    browser.save_screenshot(str(shots / "task.png"))
    gate.touch()
    click(browser, "#retry")
    wait_for(browser, lambda d: _reloaded_until(d, "COMPLETED"))
    wait_for(browser, shows("#result", "passed"))


def test_redrive_by_type_from_the_dead_letters(
    browser: Any, server: tuple[str, httpx.Client], shots: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.support.select import Select

    url, api = server
    gate = tmp_path / "gate"
    ids = [submit(api, type="gated", payload={"gate": str(gate)}, max_attempts=1) for _ in "ab"]
    wait_for(browser, lambda d: all(_status(api, i) == "FAILED" for i in ids))
    browser.get(url + "/ui/dead-letters")
    browser.save_screenshot(str(shots / "dead-letters.png"))
    for task_id in ids:
        assert task_id in text_of(browser, "#failed")

    gate.touch()
    from selenium.webdriver.common.by import By

    Select(browser.find_element(By.ID, "redrive-type")).select_by_value("gated")
    browser.find_element(By.NAME, "per_second").send_keys("50")
    click(browser, "#redrive")

    wait_for(browser, shows("#notice", "Redrive done"))
    wait_for(browser, lambda d: all(_status(api, i) == "COMPLETED" for i in ids))


def test_a_delayed_task_is_cancelled(browser: Any, server: tuple[str, httpx.Client]) -> None:
    url, api = server
    task_id = submit(api, type="email", payload="later@example.com", delay_seconds=600)
    browser.get(f"{url}/ui/tasks/{task_id}")

    click(browser, "#cancel")

    wait_for(browser, shows("#status", "CANCELLED"))
    assert _status(api, task_id) == "CANCELLED"


def test_a_task_type_is_paused_and_resumed_next_to_its_limits_and_schedules(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    url, api = server
    api.put("/task-types/declined", json={"max_concurrency": 2}).raise_for_status()
    schedule = {"name": "card-sweep", "type": "declined", "cron": "0 3 * * *"}
    api.post("/schedules", json=schedule).raise_for_status()
    browser.get(url + "/ui/flow")
    row = 'tr[data-type="declined"]'

    assert "card-sweep" in text_of(browser, "#schedules")
    assert "UTC" in text_of(browser, "#schedules .next-fire")
    assert text_of(browser, f"{row} td:nth-child(2)") == "2"
    click(browser, f"{row} button")
    wait_for(browser, shows("#notice", "Paused"))
    assert text_of(browser, f"{row} .state") == "paused"
    assert _flow(api, "declined")["paused"] is True
    click(browser, f"{row} button")
    wait_for(browser, shows("#notice", "Resumed"))
    assert _flow(api, "declined")["paused"] is False


def _flow(api: httpx.Client, task_type: str) -> dict[str, Any]:
    answer = api.get("/task-types")
    assert answer.status_code == 200, answer.text
    types = answer.json()["task_types"]
    found: dict[str, Any] = next(t for t in types if t["type"] == task_type)
    return found


@pytest.mark.parametrize("payload", XSS)
def test_hostile_input_renders_as_text_and_opens_no_dialog(
    browser: Any, server: tuple[str, httpx.Client], payload: str
) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    url, api = server
    task_id = submit(
        api, type="email", payload={"to": "a@b.io", "subject": payload}, delay_seconds=600
    )
    browser.get(f"{url}/ui/tasks/{task_id}")

    wait_for(browser, shows("#payload", payload))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - raises when no dialog is open
    assert browser.execute_script("return document.querySelectorAll('main img').length") == 0


@contextmanager
def tasks_flowing(api: httpx.Client) -> Iterator[None]:
    """Tasks submitted a few a second in the background, one in six failing, while the
    block runs: a live chart has something to show."""
    stop = threading.Event()

    def feed() -> None:
        with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=10) as own:
            n = 0
            while not stop.wait(0.15):
                n += 1
                if n % 6:
                    submit(own, type="email", payload=f"flow{n}@example.com")
                else:
                    submit(own, type="declined", payload=f"card-{n}", max_attempts=1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stop.set()
        feeder.join(timeout=WAIT_SECONDS)


_CHART_HEIGHT = 150
"""The chart's baseline (ui.js draws a zero at this y)."""


def _busy_intervals(driver: Any) -> int:
    """Intervals of the overview's chart in which some task completed."""
    ys = driver.execute_script(
        "var line = document.querySelector('#chart polyline.completed');"
        "if (!line) { return []; }"
        "return line.getAttribute('points').split(' ').map(function (p) {"
        "  return parseFloat(p.split(',')[1]); });"
    )
    return sum(1 for y in ys if y < _CHART_HEIGHT)


def _status(api: httpx.Client, task_id: str) -> str:
    return str(api.get(f"/tasks/{task_id}").json()["status"])


def _reloaded_until(driver: Any, status: str) -> bool:
    """Reload the task's page until it shows ``status``."""
    if text_of(driver, "#status") == status:
        return True
    driver.refresh()
    return False
