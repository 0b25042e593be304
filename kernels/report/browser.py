"""Open the report in real headless Chromium (Selenium + Debian's chromedriver) and check or photograph it.

Used by ``tests/test_report_browser.py`` and to make the README screenshot::

    python -m kernels.report.browser results/report/index.html docs/report.png --scale 0.5

Selenium is a test dependency, imported only here. The driver and browser paths are given explicitly so that
Selenium Manager never tries to download a driver (the machines this runs on may have no internet)."""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import time
from pathlib import Path
from typing import Any

from kernels.io import atomic_path

CHROMIUM = os.environ.get("REPORT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("REPORT_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1300, 900)


def unavailable_reason() -> str | None:
    """Why the browser check cannot run here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; it is in the 'test' extra)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not found (Debian: apt-get install -y {package})"
    return None


def open_browser(width: int = WINDOW[0], height: int = WINDOW[1]):
    """A headless Chromium whose console messages are kept (``goog:loggingPrefs``), with no network access."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: containers run as root, where Chromium's sandbox refuses to start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--proxy-server=127.0.0.1:9",
                     "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def load_report(driver, html_path: str | os.PathLike, timeout_s: float = 30.0) -> dict[str, Any]:
    """Open the page and wait until every chart has rendered or failed; returns ``window.reportStatus``."""
    driver.get(Path(html_path).resolve().as_uri())
    deadline = time.monotonic() + timeout_s
    while True:
        status = driver.execute_script("return window.reportStatus || null")
        if status and status["total"] and len(status["rendered"]) + len(status["failed"]) >= status["total"]:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{html_path}: charts not rendered within {timeout_s:.0f} s (status: {status})")
        time.sleep(0.1)


def console_problems(driver) -> list[dict]:
    """Browser console entries at WARNING or SEVERE level (Vega logs its warnings and errors there)."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") in ("WARNING", "SEVERE")]


def page_height(driver) -> int:
    return int(driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)"))


def full_page_png(driver, scale: float = 1.0) -> bytes:
    """The whole page (not just the window) as PNG, scaled by ``scale`` (below 1 makes a smaller file)."""
    width = int(driver.execute_script("return Math.ceil(document.documentElement.scrollWidth)"))
    height = page_height(driver)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}})
    return base64.b64decode(shot["data"])


def save_full_page_png(driver, path: str | os.PathLike, scale: float = 1.0) -> Path:
    """The full-page screenshot at ``path``."""
    png = full_page_png(driver, scale)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(png)
    return Path(path)


def screenshot_report(html_path: str | os.PathLike, png_path: str | os.PathLike, scale: float = 1.0,
                      width: int = WINDOW[0]) -> dict[str, Any]:
    """Render the report and save a full-page screenshot; fails when a chart did not render."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"cannot screenshot {html_path}: {reason}")
    driver = open_browser(width=width)
    try:
        status = load_report(driver, html_path)
        if status["failed"]:
            raise RuntimeError(f"{html_path}: charts failed to render: {status['failed']}")
        save_full_page_png(driver, png_path, scale)
        return status
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description="Full-page screenshot of the report in headless Chromium")
    parser.add_argument("html", help="the report page, e.g. results/report/index.html")
    parser.add_argument("png", help="where to write the screenshot")
    parser.add_argument("--scale", type=float, default=1.0, help="image scale (0.5 halves width and height)")
    parser.add_argument("--width", type=int, default=WINDOW[0], help="browser window width in CSS pixels")
    args = parser.parse_args()
    status = screenshot_report(args.html, args.png, scale=args.scale, width=args.width)
    print(f"{args.png}: {len(status['rendered'])}/{status['total']} charts rendered")


if __name__ == "__main__":
    main()
