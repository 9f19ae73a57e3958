"""Time from opening the app to the first verdict, as a first visitor gets it.

    python benchmarks/first_verdict.py [--chromium /usr/bin/chromium] [--shared]

Starts ``python app.py`` with a fresh analysis cache, waits until it serves (start-up), then opens the page in
headless Chromium, clicks the first example clip (the ready person is already chosen) and waits for the
verdict: the seconds from opening the page to the verdict is the figure (target 10 s on this 2-core CPU). The
app process's peak resident memory so far is read at the end (Linux). Writes
``benchmarks/results/first_verdict.json``. Needs Playwright and Debian's Chromium (dev extras).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, print_table, write_result

TARGET_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_served(url: str, server: subprocess.Popen, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"The app exited with code {server.returncode} before serving.")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.25)
    sys.exit(f"The app did not serve {url} within {timeout_s:.0f} s.")


def first_verdict(url: str, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#check-examples")
        loaded = time.perf_counter() - start
        label = page.locator("#check-examples button").first
        example = label.inner_text()
        label.click()
        page.wait_for_selector("#verdict h2", timeout=120_000)
        seconds = time.perf_counter() - start
        verdict = page.locator("#verdict h2").first.inner_text()
        browser.close()
    return {"page_loaded_s": round(loaded, 2), "open_to_verdict_s": round(seconds, 2), "example": example,
            "verdict": verdict}


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (``VmHWM``), where /proc has it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return round(int(fields["VmHWM"].split()[0]) / 1024, 1) if "VmHWM" in fields else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=os.environ.get("EXPOSEANYONE_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--shared", action="store_true", help="serve as a shared deployment (a Space)")
    args = parser.parse_args()
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="exposeanyone-first-verdict-"))
    environ = {**os.environ, "GRADIO_SERVER_PORT": str(port), "EXPOSEANYONE_CACHE_DIR": str(scratch / "cache"),
               "EXPOSEANYONE_PROFILES_DIR": str(scratch / "profiles"), "GRADIO_ANALYTICS_ENABLED": "False",
               "EXPOSEANYONE_SHARED": "1" if args.shared else "0"}
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=environ, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until_served(url, server)
        startup = time.perf_counter() - start
        result = {"startup_s": round(startup, 2), "shared": args.shared, **first_verdict(url, args.chromium),
                  "app_peak_rss_mb": peak_rss_mb(server.pid), "target_open_to_verdict_s": TARGET_S}
    finally:
        server.terminate()
        server.wait(timeout=30)
    write_result("first_verdict", result)
    columns = ["startup_s", "page_loaded_s", "open_to_verdict_s", "app_peak_rss_mb", "verdict"]
    print_table(columns, [[result[k] for k in columns]])
    print(json.dumps({"example": result["example"]}))


if __name__ == "__main__":
    main()
