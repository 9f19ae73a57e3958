"""The real app in headless Chromium: enroll from uploads, check a clip, toggle a corruption, screenshots.

Uses Debian's /usr/bin/chromium (never a downloaded browser) and skips when it or Playwright is missing.
Screenshots go to docs/ when EXPOSEANYONE_SCREENSHOTS=1, else to the test's temporary folder. With
EXPOSEANYONE_SCREENSHOTS=1 and the shipped EXAM model in assets/, the app runs with the shipped models
(minutes, not seconds), so the screenshots show real results.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from app_testing import ROOT, app_environment, running_app, talking_clips

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS_FOR_DOCS = os.environ.get("EXPOSEANYONE_SCREENSHOTS") == "1"
SHIPPED_MODELS = SCREENSHOTS_FOR_DOCS and (ROOT / "assets" / "exam_base" / "config.json").is_file()
CHROMIUM = os.environ.get("EXPOSEANYONE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
ENROLL_TIMEOUT_MS = 1_200_000 if SHIPPED_MODELS else 240_000
CHECK_TIMEOUT_MS = 600_000 if SHIPPED_MODELS else 180_000
UPLOAD_TIMEOUT_MS = 60_000

playwright_api = pytest.importorskip("playwright.sync_api")
synthetic = pytest.importorskip("exposeanyone.demo.synthetic")
if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    if SCREENSHOTS_FOR_DOCS:
        folder = ROOT / "docs"
        folder.mkdir(exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("browser-clips")
    wanted = {"dana_reference_1": dict(seconds=6.0, seed=10), "dana_reference_2": dict(seconds=6.0, seed=11),
              "dana_check": dict(seconds=5.0, seed=12), "eve_reference": dict(seconds=8.0, seed=13)}
    return talking_clips(folder, wanted)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """``(url, store, root)`` of the app served for this module."""
    root = tmp_path_factory.mktemp("browser-app")
    with app_environment(root, shipped_models=SHIPPED_MODELS), running_app(root) as (_, url, store):
        yield url, store, root


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(app, browser):
    url = app[0]
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, external = [], []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("request", lambda request: external.append(request.url)
           if not request.url.startswith((url.rstrip("/"), "data:", "blob:")) else None)
    tab.goto(url)
    tab.wait_for_selector("text=1. Enroll a person")
    yield tab
    if not tab.is_closed():
        tab.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
    assert not external, f"the page fetched from outside the app (fonts, CDNs): {external}"


def plot_data(page, label: str) -> list[dict]:
    """The traces of the plotly chart in the block labelled ``label`` (x and y as plain lists)."""
    return page.evaluate("""(label) => {
        const block = [...document.querySelectorAll('.block')].find(
            b => b.querySelector('.js-plotly-plot') && b.innerText.includes(label));
        const plot = block && block.querySelector('.js-plotly-plot');
        return plot ? plot.data.map(t => ({name: t.name, y: Array.from(t.y || [])})) : [];
    }""", label)


def wait_for_plot_change(page, label: str, before: list[dict], timeout_s: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = plot_data(page, label)
        if now and now != before:
            return now
        time.sleep(0.5)
    return plot_data(page, label)


def wait_for_download(page, suffix: str) -> None:
    page.wait_for_function("(suffix) => [...document.querySelectorAll('#downloads a')].some("
                           "a => decodeURIComponent(a.href).endsWith(suffix))", arg=suffix, timeout=CHECK_TIMEOUT_MS)


def test_enroll_check_and_corrupt_in_the_browser(page, clips, screenshot_dir):
    # ---- enroll from uploaded clips, watching the progress bar
    page.get_by_label("Person's name").fill("Dana")
    page.locator("input[type=file]").first.set_input_files([str(clips["dana_reference_1"]),
                                                           str(clips["dana_reference_2"])])
    page.wait_for_function("() => document.querySelector('#references').innerText.includes('dana_reference_2')",
                           timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_role("button", name="Enroll", exact=True).click()
    progress = page.wait_for_selector(".progress-level-inner, .progress-text", timeout=60_000)
    assert progress.is_visible()
    page.wait_for_selector("h3:has-text(\"Enrolled 'Dana'\")", timeout=ENROLL_TIMEOUT_MS)
    summary = page.locator("#profile-info").inner_text()
    assert "usable reference" in summary and "exam threshold" in summary and "Warnings" in summary
    page.screenshot(path=str(screenshot_dir / "app_enroll.png"), full_page=True)

    # ---- check a clip against the new profile
    page.get_by_role("tab", name="2. Check a clip").click()
    page.locator("input[type=file][accept*='video']").last.set_input_files(str(clips["dana_check"]))
    page.wait_for_selector("video", timeout=UPLOAD_TIMEOUT_MS)
    profile = page.get_by_label("Profile", exact=True)
    assert profile.input_value() == "Dana"
    page.get_by_role("button", name="Check", exact=True).click()
    page.wait_for_selector("#verdict h2", timeout=CHECK_TIMEOUT_MS)
    verdict = page.locator("#verdict").inner_text()
    assert any(word in verdict for word in ("REAL", "FAKE", "INCONCLUSIVE")) and "threshold" in verdict
    trajectories = wait_for_plot_change(page, "Expression trajectories", [])
    assert {"observed", "generated"} <= {t["name"] for t in trajectories}
    scores = plot_data(page, "Per-frame score")
    wait_for_download(page, "_exam_annotated.mp4")  # the annotated copy follows the verdict
    time.sleep(1)
    page.screenshot(path=str(screenshot_dir / "app_check.png"), full_page=True)

    # ---- the FauForensics tab gets its own verdict for the same clip
    page.get_by_role("tab", name="FauForensics").click()
    page.wait_for_function("() => /REAL|FAKE|INCONCLUSIVE/.test(document.querySelector('#fau-result')?.innerText ?? '')",
                           timeout=CHECK_TIMEOUT_MS)
    assert "audio offset" in page.locator("#fau-result").inner_text()
    page.get_by_role("tab", name="2. Check a clip").click()

    # ---- toggle a corruption: the result and the plots change
    page.get_by_text("Corruptions: test how the verdict holds").click()
    blur = page.locator("#corrupt-blur input[type=number]")
    blur.fill("5")
    blur.press("Enter")
    page.wait_for_function("() => document.querySelector('#corrupt-spec textarea, #corrupt-spec input')"
                           ".value === 'blur:5'", timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_role("button", name="Check", exact=True).click()
    page.wait_for_selector("#verdict td:has-text('blur:5')", timeout=CHECK_TIMEOUT_MS)
    corrupted = wait_for_plot_change(page, "Expression trajectories", trajectories)
    assert corrupted != trajectories
    assert plot_data(page, "Per-frame score") != scores
    wait_for_download(page, "_exam_blur-5_annotated.mp4")
    page.screenshot(path=str(screenshot_dir / "app_check_blur.png"), full_page=True)


def test_cancel_stops_an_enrollment(page, app, clips):
    _, store, _ = app
    page.get_by_label("Person's name").fill("Eve")
    page.locator("input[type=file]").first.set_input_files([str(clips["eve_reference"])])  # not analysed yet
    page.wait_for_function("() => document.querySelector('#references').innerText.includes('eve_reference')",
                           timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_role("button", name="Enroll", exact=True).click()
    # the worker's own progress message, not just gradio's queue indicator: the enrollment has started
    page.wait_for_selector("text=/tracking the face/", timeout=60_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.wait_for_selector("text=Enrollment cancelled; nothing was saved.", timeout=120_000)
    # uncancelled, this enrollment would finish within ~15 s; the worker must stop at its next progress report
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert "Eve" not in store.names()
        time.sleep(1)


def test_closing_the_tab_removes_the_session_files(page, app, clips):
    _, _, root = app
    page.get_by_role("tab", name="2. Check a clip").click()
    page.locator("input[type=file][accept*='video']").last.set_input_files(str(clips["dana_check"]))
    page.wait_for_selector("video", timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_label("Detector", exact=True).click()
    page.get_by_role("option", name="sync").click()
    page.get_by_role("button", name="Check", exact=True).click()
    wait_for_download(page, "_sync_report.json")
    created = {report.parent for report in (root / "sessions").glob("*/*_sync_report.json")}
    assert len(created) == 1  # this session's folder
    page.close()
    deadline = time.monotonic() + 30
    while any(folder.exists() for folder in created) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(folder.exists() for folder in created)


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    """``(url, store, root)`` of the app served as a shared deployment (a Space)."""
    root = tmp_path_factory.mktemp("browser-shared-app")
    with app_environment(root), running_app(root, shared=True) as (_, url, store):
        yield url, store, root


def test_two_visitors_of_a_shared_app_keep_their_own_profiles(shared_app, browser, clips):
    url, store, root = shared_app
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    first, second = pages = [context.new_page() for context in contexts]
    try:
        for tab in pages:
            tab.goto(url)
            tab.wait_for_selector("text=1. Enroll a person")
        assert "private to this tab" in first.locator("#shared-note").inner_text()

        def enroll(tab, clip: Path | None, expect: str) -> str:
            tab.get_by_label("Person's name").fill("Zoe")
            if clip is not None:
                tab.locator("input[type=file]").first.set_input_files([str(clip)])
                tab.wait_for_function("(stem) => document.querySelector('#references').innerText.includes(stem)",
                                      arg=clip.stem, timeout=UPLOAD_TIMEOUT_MS)
            tab.get_by_role("button", name="Enroll", exact=True).click()
            tab.wait_for_selector(f"h3:has-text(\"{expect}\")", timeout=ENROLL_TIMEOUT_MS)
            return tab.locator(".status-box").first.inner_text()

        enroll(first, clips["eve_reference"], "Enrolled 'Zoe'")
        # the second visitor has no Zoe: theirs is enrolled without being asked to replace the first's
        enroll(second, clips["dana_reference_1"], "Enrolled 'Zoe'")
        assert "dana_reference_1" in second.locator("#profile-info").inner_text()
        assert "eve_reference" in first.locator("#profile-info").inner_text()
        # the first visitor enrolling Zoe again is asked to tick Replace, and keeps their Zoe
        assert "A profile named 'Zoe' exists" in enroll(first, None, "tick 'Replace' to overwrite it")
        assert store.names() == [] and len(list(root.glob("sessions/*/profiles/Zoe/profile.json"))) == 2
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="module")
def example_app(tmp_path_factory):
    """The app as a first visitor of a Space finds it: shipped models, the GRID examples and the ready person."""
    root = tmp_path_factory.mktemp("browser-example-app")
    with app_environment(root, shipped_models=True), running_app(root, examples=True, shared=True) as (_, url, _):
        yield url


@pytest.mark.skipif(not (ROOT / "examples" / "examples.json").is_file(), reason="examples/ is not in this checkout")
def test_a_first_visitor_checks_an_example_with_one_click(example_app, browser, screenshot_dir):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        tab.goto(example_app)
        note = tab.wait_for_selector("#ready-note").inner_text()
        assert "GRID speaker s1" in note and "already enrolled" in note
        assert tab.get_by_label("Profile", exact=True).input_value() == "GRID speaker s1"  # the check tab is open
        tab.locator("#check-examples button", has_text="genuine: other sentences").click()
        tab.wait_for_selector("#verdict h2", timeout=600_000)
        assert tab.locator("#verdict h2").first.inner_text().startswith("REAL")
        trajectories = wait_for_plot_change(tab, "Expression trajectories", [])
        assert {"observed", "generated"} <= {t["name"] for t in trajectories}
        time.sleep(1)
        tab.locator("#trajectories").screenshot(path=str(screenshot_dir / "app_trajectories.png"))
        tab.screenshot(path=str(screenshot_dir / "app_first_visit.png"), full_page=True)
    finally:
        tab.close()
