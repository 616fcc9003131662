"""A headless Chromium driven by selenium with the system's chromedriver: never a
browser or driver downloaded at test time (no Selenium Manager)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

DRIVERS = ("/usr/bin/chromedriver",)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromedriver() -> str | None:
    """The system chromedriver: ``CHROMEDRIVER``, Debian's, on PATH, or the GitHub
    runner's (``CHROMEWEBDRIVER``)."""
    runner = os.environ.get("CHROMEWEBDRIVER")
    candidates = [
        os.environ.get("CHROMEDRIVER"),
        *DRIVERS,
        shutil.which("chromedriver"),
        str(Path(runner) / "chromedriver") if runner else None,
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def find_browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def why_no_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if find_chromedriver() is None:
        return "no chromedriver (apt-get install chromium-driver; `make test` does as root)"
    if find_browser() is None:
        return "no Chromium or Chrome (apt-get install chromium; `make test` does as root)"
    return None


def start_chromium(width: int = 1280, height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",  # headless as root needs it
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.binary_location = find_browser() or ""
    return webdriver.Chrome(service=Service(find_chromedriver()), options=options)
