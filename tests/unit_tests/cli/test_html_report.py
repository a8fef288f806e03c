"""The HTML report of `tokenopt analyze`: content, escaping, nulls, and no matplotlib.

The page is also opened in a real browser by tests/integration_tests/cli/test_html_report.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from langchain_tokenopt.cli.html_report import render_html
from langchain_tokenopt.core.formatting import usd
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError
from tests.support.analyze_reports import (
    EXAMPLE_REPORT_PATH,
    example_report,
    hostile_report,
    schema_errors,
)


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each element id'd."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def _section(page: str, section_id: str) -> str:
    start = page.index(f'id="{section_id}"')
    return page[start : page.index("</section>", start)]


@pytest.fixture(scope="module")
def example_page() -> str:
    """The example report rendered once for the tests that only read it."""
    return render_html(example_report())


def test_the_example_report_conforms_to_the_schema() -> None:
    assert schema_errors(example_report()) == []


def test_the_schema_check_catches_a_float_for_money() -> None:
    report = example_report()
    report["baseline"]["cost_usd"] = 6.84

    assert any("baseline/cost_usd" in error for error in schema_errors(report))


def test_the_page_is_self_contained(example_page: str) -> None:
    tags = _tags(example_page)

    assert [tag for tag, _ in tags if tag in {"script", "img", "iframe", "object"}] == []
    for tag, attrs in tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), (tag, attrs)
    assert ("style", {}) in tags  # the CSS is inline


def test_every_chart_is_inline_svg(example_page: str) -> None:
    page = example_page

    for name in ("levers", "models", "conversations", "calls"):
        figure = page[page.index(f'id="chart-{name}"') :]
        assert figure.index("<svg") < figure.index("</figure>"), name
    assert 'id="charts-missing"' not in page


def test_every_lever_shows_its_saving_in_dollars_and_the_combined_row_last(
    example_page: str,
) -> None:
    report = example_report()
    levers = _section(example_page, "levers")

    for lever in report["levers"]:
        assert usd(Decimal(lever["cost_saved_usd"])) in levers, lever["name"]
    assert "$0.000023" in levers  # dedup saves $0.0000231, not "$0.0000"
    table = levers[levers.index('id="levers-table"') :]
    assert table.index("all together") > table.index("<td>routing</td>")
    assert usd(Decimal(report["combined"]["cost_saved_usd"])) in levers


def test_the_models_chart_leaves_out_the_unpriced_model_and_the_table_keeps_it(
    example_page: str,
) -> None:
    models = _section(example_page, "models")

    chart = models[: models.index("</figure>")]
    assert "gpt-4o-mini" in chart
    assert "acme-local-7b" not in chart
    assert "acme-local-7b" in models[models.index("</figure>") :]
    assert "no price" in models


def test_overlaps_usage_check_skipped_and_budget_are_reported(example_page: str) -> None:
    report = example_report()
    page = example_page

    for overlap in report["overlaps"]:
        assert overlap["note"] in page
    usage = _section(page, "usage-check")
    assert "2,921,117" in usage and "2,915,804" in usage
    skipped = _section(page, "skipped")
    assert "3 records" in skipped
    assert "line 7: field &#x27;messages[3].role&#x27;" in skipped
    assert "617" in _section(page, "budget")


def test_markup_from_the_log_is_escaped_everywhere() -> None:
    page = render_html(hostile_report())

    tags = [tag for tag, _ in _tags(page)]
    assert "script" not in tags
    assert "img" not in tags
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;console.error(&#x27;xss-model&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt;" in page
    assert "<title>tokenopt analyze: &lt;title&gt;x&lt;/title&gt;.jsonl</title>" in page


def test_a_dollar_sign_in_a_model_name_is_text_not_math() -> None:
    report = example_report()
    report["models"][0]["model"] = "$cheap$ model"

    models = _section(render_html(report), "models")

    chart = models[: models.index("</figure>")]
    assert "$cheap$ model" in chart


def test_a_log_with_no_price_charts_tokens_and_says_so() -> None:
    report = example_report()
    for totals in [
        report["baseline"],
        report["combined"],
        *(lever["after"] for lever in report["levers"]),
    ]:
        totals["cost_usd"] = None
        totals["unpriced_requests"] = totals["requests"]
    report["combined"]["cost_saved_usd"] = None
    report["combined"]["share_saved"] = 0.633  # of tokens, when nothing is priced
    for lever in report["levers"]:
        lever["cost_saved_usd"] = None
    for row in [*report["models"], *report["conversations_top"]]:
        row["cost_usd"] = None
        row["cost_saved_usd_by_lever"] = dict.fromkeys(row["cost_saved_usd_by_lever"])
    report["provider_cache"]["baseline_discount_usd"] = None
    assert schema_errors(report) == []

    page = render_html(report)

    assert "Spend per lever, input tokens" in page
    assert ">63.3% of tokens<" in page
    assert 'id="chart-models"' not in page
    assert 'id="chart-conversations"' not in page
    assert "2,951 requests used a model with no known price" in page
    assert "no price" in _section(page, "levers")


def test_a_report_with_empty_lists_still_renders() -> None:
    report = example_report()
    report.update(levers=[], overlaps=[], models=[], conversations_top=[], budget=None)
    report["calls"] = {
        "every": 1,
        "index": [],
        "model": [],
        "input_tokens": [],
        "combined_input_tokens": [],
    }
    report["skipped"] = {"count": 0, "examples": []}
    report["usage_check"]["requests_with_usage"] = 0
    assert schema_errors(report) == []

    page = render_html(report)

    assert "No requests." in page
    assert "No conversations." in page
    assert "No calls to chart." in page
    assert "No record was skipped." in page
    assert 'id="budget"' not in page
    assert "<svg" not in page


def test_without_matplotlib_the_page_keeps_its_tables_and_names_the_extra() -> None:
    # A real interpreter in which `import matplotlib` fails, as without the viz extra.
    script = (
        "import json, sys\n"
        "sys.modules['matplotlib'] = None\n"
        "from langchain_tokenopt.cli.html_report import render_html\n"
        f"report = json.load(open({str(EXAMPLE_REPORT_PATH)!r}))\n"
        "sys.stdout.write(render_html(report))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    page = done.stdout

    assert 'id="charts-missing"' in page
    assert "pip install 'langchain-tokenopt[viz]'" in page
    assert "<svg" not in page
    assert 'id="levers-table"' in page and 'id="models-table"' in page


@pytest.mark.parametrize("report", [None, [], "report"])
def test_a_report_that_is_not_a_mapping_is_a_type_error(report: Any) -> None:
    with pytest.raises(ArgumentTypeError, match="report must be"):
        render_html(report)


def test_another_object_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="schema 'langchain-tokenopt/analyze'"):
        render_html({"schema": "something/else"})


@pytest.mark.parametrize("bad", [6.84, "six", "NaN", "Infinity", True])
def test_money_that_is_not_a_decimal_string_names_the_field(bad: Any) -> None:
    report = example_report()
    report["baseline"]["cost_usd"] = bad

    with pytest.raises(InvalidArgumentError, match=r"baseline\.cost_usd"):
        render_html(report)


def test_the_same_report_renders_to_the_same_page(example_page: str) -> None:
    report = json.loads(EXAMPLE_REPORT_PATH.read_text(encoding="utf-8"))

    assert render_html(report) == example_page
