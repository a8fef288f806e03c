"""The HTML report of `tokenopt analyze`, opened in a real headless Chromium."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from langchain_tokenopt.cli.app import main
from langchain_tokenopt.cli.html_report import render_html
from langchain_tokenopt.core.formatting import usd
from tests.support.analyze_reports import example_report, hostile_report
from tests.support.browser import browser_missing, open_page

#: Each chart, and how many shapes it draws at least: two bars per row (7 lever rows,
#: 2 priced models, 15 conversations), or the area and the line of the calls chart.
CHARTS = {"levers": 14, "models": 4, "conversations": 30, "calls": 2}


@pytest.fixture(scope="module")
def example_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example report rendered once, for the tests that only look at it."""
    return _write(tmp_path_factory.mktemp("report"), render_html(example_report()))


def _write(tmp_path: Path, page: str) -> Path:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_example_report_renders_without_console_errors(chromium: Any, example_path: Path) -> None:
    errors = open_page(chromium, example_path)

    assert errors == []
    assert chromium.title == "tokenopt analyze: logs/2026-11-24.jsonl, logs/2026-11-25.jsonl"
    headline = chromium.find_element(By.ID, "headline").text
    assert "What langchain-tokenopt would save" in headline
    # baseline, after every lever, and the saving with its share (from the fixture)
    assert "$6.8413" in headline
    assert "$2.7126" in headline
    assert "$4.1287 (60.3%)" in headline


def test_every_chart_is_drawn_with_a_visible_size(chromium: Any, example_path: Path) -> None:
    open_page(chromium, example_path)

    for name, shapes in CHARTS.items():
        svg = chromium.find_element(By.CSS_SELECTOR, f"#chart-{name} svg")
        box = chromium.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", svg
        )
        assert box[0] > 300 and box[1] > 150, (name, box)
        # the bars or lines themselves, not just an empty frame
        drawn = chromium.execute_script(
            "return [...arguments[0].querySelectorAll('path')]"
            ".filter(p => { const r = p.getBoundingClientRect();"
            " return r.width > 0 && r.height > 0; }).length;",
            svg,
        )
        assert drawn >= shapes, (name, drawn)


def test_the_levers_chart_labels_a_sub_cent_saving_with_its_digits(
    chromium: Any, example_path: Path
) -> None:
    open_page(chromium, example_path)

    chart_text = chromium.find_element(By.CSS_SELECTOR, "#chart-levers svg").text
    # the dedup lever saves $0.0000231: never "$0.0000" next to a real saving
    assert "saves $0.000023" in chart_text
    assert "saves $0.0000," not in chart_text


def test_markup_from_the_log_shows_as_text_and_never_runs(chromium: Any, tmp_path: Path) -> None:
    errors = open_page(chromium, _write(tmp_path, render_html(hostile_report())))

    assert errors == []
    assert chromium.find_elements(By.TAG_NAME, "script") == []
    assert chromium.find_elements(By.TAG_NAME, "img") == []
    assert chromium.title == "tokenopt analyze: <title>x</title>.jsonl"
    models = chromium.find_element(By.ID, "models-table").text
    assert "<script>console.error('xss-model')</script>" in models
    conversations = chromium.find_element(By.ID, "conversations-table").text
    assert '"><img src=x onerror="console.error(1)">' in conversations


def test_the_console_check_sees_a_script_error(chromium: Any, tmp_path: Path) -> None:
    # The check above must be able to fail: a page that logs an error is caught.
    page = "<!DOCTYPE html><title>t</title><script>console.error('boom')</script>"

    errors = open_page(chromium, _write(tmp_path, page))

    assert any("boom" in error for error in errors)


def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set, so this is a failure"):
        browser_missing("chromium not found")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium not found"):
        browser_missing("chromium not found")


def test_analyze_writes_a_page_of_the_real_report_that_renders(
    chromium: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tokenopt analyze --sample requests --html` end to end: the page it writes shows the
    same baseline as its `--json`, and renders in the browser without console errors."""
    target = tmp_path / "report.html"
    assert main(["analyze", "--sample", "requests", "--json", "--html", str(target)]) == 0
    report = json.loads(capsys.readouterr().out)

    errors = open_page(chromium, target)

    assert errors == []
    headline = chromium.find_element(By.ID, "headline").text
    assert usd(Decimal(report["baseline"]["cost_usd"])) in headline
    for lever in report["levers"]:
        assert lever["label"] in chromium.find_element(By.TAG_NAME, "body").text


def test_analyze_html_into_a_missing_folder_is_a_clear_error_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nowhere" / "report.html"
    assert main(["analyze", "--sample", "requests", "--html", str(target)]) != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not target.exists()
