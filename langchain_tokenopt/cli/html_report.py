"""`tokenopt analyze --html`: the analysis report (docs/analyze-json.md) as one HTML file.

The page is self-contained: inline CSS, charts inline as SVG (`report_charts`, needs the
`viz` extra; without it the page says so and keeps every table), no script, no network.
Every string that came from the log (model names, conversation ids, notes, skipped
records) is HTML-escaped: a log is user data.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from langchain_tokenopt.cli.report_charts import PairedBars, calls_svg, paired_bars_svg
from langchain_tokenopt.core.formatting import plural, usd
from langchain_tokenopt.core.validation import instance_of, shown
from langchain_tokenopt.errors import InvalidArgumentError, MissingExtraError

#: How many of the most expensive conversations the conversation chart shows (the
#: table below it lists every one the report carries).
TOP_CONVERSATIONS_CHARTED = 15

_CSS = """
:root { color-scheme: light; --ink: #1d2733; --muted: #5b6673; --line: #dde2e8;
  --accent: #1f6fb2; --good: #1b7f4b; --band: #f5f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-top: 12px; border-top: 1px solid var(--line); }
p.sub, p.note, .muted { color: var(--muted); }
p.sub { margin: 0 0 18px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  background: var(--band); }
.card .label { font-size: 13px; color: var(--muted); }
.card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .value.good { color: var(--good); }
figure.chart { margin: 12px 0; }
figure.chart svg { display: block; width: 100%; height: auto; }
.notice { border-left: 4px solid var(--accent); background: var(--band); padding: 8px 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; background: var(--band); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
table.kv { width: auto; min-width: 50%; }
table.kv td:first-child { padding-right: 40px; }
td.id { overflow-wrap: anywhere; min-width: 10em; }
div.scroll { overflow-x: auto; }
#models-table, #conversations-table { font-size: 13px; }
#models-table td:first-child, #conversations-table td:nth-child(2) { white-space: nowrap; }
#levers-table td:last-child { min-width: 22em; }
ul.details { margin: 0; padding-left: 16px; color: var(--muted); font-size: 13px; }
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The report of `tokenopt analyze` (its `--json` object) as one self-contained page.

    Every string from the log is escaped; money fields (decimal strings) are shown with
    `usd`, null money as "no price". Raises `ArgumentTypeError` for a non-mapping and
    `InvalidArgumentError` for another object or a money field that is not a decimal.

    Example:
        >>> page = render_html({"schema": "langchain-tokenopt/analyze", "sources": ["<a>.jsonl"]})
        >>> page.startswith("<!DOCTYPE html>"), "&lt;a&gt;.jsonl" in page, "<script" in page
        (True, True, False)
    """
    instance_of(report, "report", Mapping, "the report object of `tokenopt analyze --json`")
    if report.get("schema") != "langchain-tokenopt/analyze":
        raise InvalidArgumentError(
            "report must be the object `tokenopt analyze --json` prints "
            f"(schema 'langchain-tokenopt/analyze'), got schema {shown(report.get('schema'))}"
        )
    charts = _Charts()
    sections = [
        _headline(report),
        _levers(report, charts),
        _models(report, charts),
        _conversations(report, charts),
        _calls(report, charts),
        _provider_cache(report),
        _usage_check(report),
        _budget(report),
        _skipped(report),
        _settings(report),
    ]
    title = f"tokenopt analyze: {', '.join(map(str, report.get('sources') or [])) or 'report'}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # no favicon request: the page never touches the network
        '<link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>\n{charts.missing_notice()}{''.join(sections)}</main></body></html>\n"
    )


class _Charts:
    """Draws charts while matplotlib is there; remembers when it is not."""

    def __init__(self) -> None:
        self.missing: MissingExtraError | None = None

    def draw(self, chart_id: str, caption: str, draw: Callable[[], str]) -> str:
        if self.missing is not None:
            return ""
        try:
            svg = draw()
        except MissingExtraError as exc:
            self.missing = exc
            return ""
        return (
            f'<figure class="chart" id="chart-{chart_id}">{svg}'
            f'<figcaption class="muted">{_e(caption)}</figcaption></figure>\n'
        )

    def missing_notice(self) -> str:
        if self.missing is None:
            return ""
        return (
            '<p class="notice" id="charts-missing">Charts need matplotlib: '
            "<code>pip install 'langchain-tokenopt[viz]'</code>. The tables below have every "
            "figure.</p>\n"
        )


def _headline(report: Mapping[str, Any]) -> str:
    baseline = report.get("baseline") or {}
    combined = report.get("combined") or {}
    grouping = report.get("grouping") or {}
    saved = _decimal(combined.get("cost_saved_usd"), "combined.cost_saved_usd")
    share = combined.get("share_saved")
    if saved is not None:
        saved_text = usd(saved) + (f" ({_share(share)})" if share is not None else "")
    else:  # nothing priced: the share is of tokens
        saved_text = "no price" if share is None else f"{_share(share)} of tokens"
    cards = [
        ("Spent as logged", _money(baseline.get("cost_usd"), "baseline.cost_usd"), ""),
        ("With every lever", _money(combined.get("cost_usd"), "combined.cost_usd"), ""),
        ("Saved", saved_text, "good"),
        ("Requests", f"{int(report.get('requests') or 0):,}", ""),
    ]
    card_html = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value {css}">{_e(value)}</div></div>'
        for label, value, css in cards
    )
    sources = ", ".join(str(source) for source in report.get("sources") or []) or "no input"
    about = (
        f"{sources} · format {report.get('format', '?')} · "
        f"{plural(int(report.get('requests') or 0), 'request')} in "
        f"{plural(int(report.get('conversations') or 0), 'conversation')} "
        f"({int(grouping.get('by_id') or 0):,} by id, {int(grouping.get('by_prefix') or 0):,} "
        f"by shared prefix) · {_bytes(int(report.get('input_bytes') or 0))} read"
    )
    unpriced = int(baseline.get("unpriced_requests") or 0)
    unpriced_note = (
        f'<p class="note">{_e(plural(unpriced, "request"))} used a model with no known price; '
        "they count in the tokens, not in the dollars.</p>"
        if unpriced
        else ""
    )
    return (
        '<header id="headline"><h1>What langchain-tokenopt would save</h1>'
        f'<p class="sub">{_e(about)}</p><div class="cards">{card_html}</div>'
        f'<p class="note">Dollars are net of the prefix caching the provider already gives.</p>'
        f"{unpriced_note}</header>\n"
    )


def _levers(report: Mapping[str, Any], charts: _Charts) -> str:
    baseline = report.get("baseline") or {}
    combined = report.get("combined") or {}
    levers: list[Mapping[str, Any]] = list(report.get("levers") or [])
    rows = [
        *levers,
        {
            "name": "all together",
            "label": "every lever replayed together",
            "after": combined,
            **_saved_fields(combined),
        },
    ]
    base_cost = _decimal(baseline.get("cost_usd"), "baseline.cost_usd")
    if base_cost is not None:
        unit, before_value = "dollars", float(base_cost)
        before_label = usd(base_cost)
    else:  # nothing priced: compare input tokens instead
        unit = "input tokens"
        before_value = float(int(baseline.get("input_tokens") or 0))
        before_label = f"{int(before_value):,}"
    after_values: list[float] = []
    after_labels: list[str] = []
    for row in rows:
        after = row.get("after") or {}
        if unit == "dollars":
            cost = _decimal(after.get("cost_usd"), f"{row.get('name')}.after.cost_usd")
            saved = _decimal(row.get("cost_saved_usd"), f"{row.get('name')}.cost_saved_usd")
            after_values.append(float(cost or 0))
            after_labels.append(
                f"{usd(cost)}  (saves {usd(saved)}, {_share(row.get('share_saved'))})"
            )
        else:
            tokens = int(after.get("input_tokens") or 0)
            after_values.append(float(tokens))
            after_labels.append(f"{tokens:,}  (saves {int(row.get('input_tokens_saved') or 0):,})")
    chart = (
        charts.draw(
            "levers",
            "Each lever replayed alone on the same requests, then all of them together.",
            lambda: paired_bars_svg(
                PairedBars(
                    title=f"Spend per lever, {unit}",
                    axis_label=unit,
                    rows=[str(row.get("name")) for row in rows],
                    before=[before_value] * len(rows),
                    after=after_values,
                    before_labels=[before_label] * len(rows),
                    after_labels=after_labels,
                )
            ),
        )
        if rows and levers
        else ""
    )
    table = _table(
        [
            "lever",
            ("requests changed", True),
            ("input tokens saved", True),
            ("output tokens saved", True),
            ("spend after", True),
            ("saved", True),
            ("share", True),
            "what it does",
        ],
        [
            [
                _e(row.get("name")),
                _num(row.get("requests_changed")),
                _num(row.get("input_tokens_saved")),
                _num(row.get("output_tokens_saved")),
                _e(_money((row.get("after") or {}).get("cost_usd"), "after.cost_usd")),
                _e(_money(row.get("cost_saved_usd"), "cost_saved_usd")),
                _e(_share(row.get("share_saved"))),
                _e(row.get("label")) + _details(row.get("note"), row.get("details")),
            ]
            for row in rows
        ],
        "levers-table",
    )
    return f'<section id="levers"><h2>Per lever</h2>{chart}{table}{_overlaps(report)}</section>\n'


def _overlaps(report: Mapping[str, Any]) -> str:
    overlaps = list(report.get("overlaps") or [])
    if not overlaps:
        return ""
    items = "".join(
        f"<li><b>{_e(' + '.join(map(str, item.get('levers') or [])))}</b>: "
        f"{_e(item.get('note'))}</li>"
        for item in overlaps
    )
    return (
        '<div id="overlaps"><p class="note">These levers overlap, so their savings do not '
        "add up; the last row replays them together and is the figure to trust.</p>"
        f"<ul>{items}</ul></div>"
    )


def _models(report: Mapping[str, Any], charts: _Charts) -> str:
    models = list(report.get("models") or [])
    if not models:
        return '<section id="models"><h2>Per model</h2><p class="note">No requests.</p></section>\n'
    lever_names = _lever_names(report)
    priced = _priced_rows(models)
    chart = _spend_figure(
        charts,
        "models",
        "Spend per model as logged and with every lever (models with no price: table only).",
        ("Spend per model, dollars", priced, "model"),
    )
    table = _table(
        [
            "model",
            ("requests", True),
            ("input tokens", True),
            ("output tokens", True),
            ("spend", True),
            *[(_saved_header(name), True) for name in lever_names],
        ],
        [
            [
                _e(row.get("model"))
                + ("" if row.get("priced", True) else ' <span class="muted">(no price)</span>'),
                _num(row.get("requests")),
                _num(row.get("input_tokens")),
                _num(row.get("output_tokens")),
                _e(_money(row.get("cost_usd"), "models.cost_usd")),
                *_saved_by_lever(row, lever_names),
            ]
            for row in models
        ],
        "models-table",
    )
    return f'<section id="models"><h2>Per model</h2>{chart}{table}</section>\n'


def _conversations(report: Mapping[str, Any], charts: _Charts) -> str:
    conversations = list(report.get("conversations_top") or [])
    heading = "<h2>Per conversation (the most expensive)</h2>"
    if not conversations:
        empty = '<p class="note">No conversations.</p>'
        return f'<section id="conversations">{heading}{empty}</section>\n'
    lever_names = _lever_names(report)
    charted = _priced_rows(conversations)[:TOP_CONVERSATIONS_CHARTED]
    chart = _spend_figure(
        charts,
        "conversations",
        f"The {len(charted)} most expensive conversations, as logged and with every lever.",
        ("Spend per conversation, dollars", charted, "id"),
    )
    table = _table(
        [
            "conversation",
            "models",
            ("requests", True),
            ("input tokens", True),
            ("spend", True),
            *[(_saved_header(name), True) for name in lever_names],
        ],
        [
            [
                _e(row.get("id")),
                "<br>".join(_e(model) for model in row.get("models") or []),
                _num(row.get("requests")),
                _num(row.get("input_tokens")),
                _e(_money(row.get("cost_usd"), "conversations_top.cost_usd")),
                *_saved_by_lever(row, lever_names),
            ]
            for row in conversations
        ],
        "conversations-table",
        id_column=True,
    )
    return f'<section id="conversations">{heading}{chart}{table}</section>\n'


def _calls(report: Mapping[str, Any], charts: _Charts) -> str:
    calls = report.get("calls") or {}
    index = list(calls.get("index") or [])
    before = list(calls.get("input_tokens") or [])
    after = list(calls.get("combined_input_tokens") or [])
    points = min(len(index), len(before), len(after))
    if points == 0:
        body = '<p class="note">No calls to chart.</p>'
    else:
        every = int(calls.get("every") or 1)
        body = charts.draw(
            "calls",
            "Input tokens each call sends, as logged and after the combined replay "
            "(a call answered from the cache sends none).",
            lambda: calls_svg(index[:points], before[:points], after[:points], every),
        )
        body += (
            f'<p class="note">{points:,} calls charted; before {sum(before[:points]):,} input '
            f"tokens, after {sum(after[:points]):,}.</p>"
        )
    return f'<section id="calls"><h2>Tokens per call</h2>{body}</section>\n'


def _provider_cache(report: Mapping[str, Any]) -> str:
    cache = report.get("provider_cache") or {}
    rows = [
        [
            "OpenAI caches prefixes of at least",
            _e(
                f"{int(cache.get('openai_min_prefix_tokens') or 0):,} tokens, in steps of "
                f"{int(cache.get('openai_step_tokens') or 0):,}"
            ),
        ],
        ["Anthropic", _e(f"caches what is marked with {cache.get('anthropic', '?')}")],
        [
            "input tokens the baseline reads from the provider's cache",
            _num(cache.get("baseline_cached_input_tokens")),
        ],
        [
            "discount the provider already gives",
            _e(_money(cache.get("baseline_discount_usd"), "provider_cache.baseline_discount_usd")),
        ],
    ]
    return (
        '<section id="provider-cache"><h2>Provider prefix caching</h2>'
        f"{_table(['', ''], rows, 'provider-cache-table', header=False)}</section>\n"
    )


def _usage_check(report: Mapping[str, Any]) -> str:
    check = report.get("usage_check") or {}
    with_usage = int(check.get("requests_with_usage") or 0)
    if not with_usage:
        body = '<p class="note">No request logged its usage; every count is ours.</p>'
    else:
        body = _table(
            ["", ("logged by the provider", True), ("counted by tokenopt", True)],
            [
                [
                    "input tokens",
                    _num(check.get("logged_input_tokens")),
                    _num(check.get("counted_input_tokens")),
                ],
                [
                    "output tokens",
                    _num(check.get("logged_output_tokens")),
                    _num(check.get("counted_output_tokens")),
                ],
            ],
            "usage-check-table",
        ) + (
            f'<p class="note">Over the {_e(plural(with_usage, "request"))} that logged usage; '
            f"input differs by {_e(_share(check.get('input_difference_share')))}. "
            "Logged counts are used where present.</p>"
        )
    return f'<section id="usage-check"><h2>Logged usage against our count</h2>{body}</section>\n'


def _budget(report: Mapping[str, Any]) -> str:
    budget = report.get("budget")
    if not budget:
        return ""
    first = budget.get("first_stopped_request")
    rows = [
        ["budget", _e(_money(budget.get("budget_usd"), "budget.budget_usd"))],
        ["requests it would have stopped", _num(budget.get("stopped_requests"))],
        ["their spend", _e(_money(budget.get("stopped_cost_usd"), "budget.stopped_cost_usd"))],
        ["first stopped request (log order)", _e("none" if first is None else f"#{int(first):,}")],
    ]
    return (
        '<section id="budget"><h2>Budget</h2>'
        f"{_table(['', ''], rows, 'budget-table', header=False)}</section>\n"
    )


def _skipped(report: Mapping[str, Any]) -> str:
    skipped = report.get("skipped") or {}
    count = int(skipped.get("count") or 0)
    if not count:
        body = '<p class="note">No record was skipped.</p>'
    else:
        examples = "".join(
            f"<li><code>{_e(example)}</code></li>" for example in skipped.get("examples") or []
        )
        body = (
            f"<p>{_e(plural(count, 'record'))} could not be read and were left out "
            f"(<code>--skip-invalid</code>).</p><ul>{examples}</ul>"
        )
    return f'<section id="skipped"><h2>Skipped records</h2>{body}</section>\n'


def _settings(report: Mapping[str, Any]) -> str:
    settings = report.get("settings") or {}
    rows = [[_e(key), _e(_field(str(key), value))] for key, value in settings.items()]
    return (
        '<section id="settings"><h2>Settings</h2>'
        f"{_table(['', ''], rows, 'settings-table', header=False)}</section>\n"
    )


# --- pieces -----------------------------------------------------------------------------


def _spend_figure(
    charts: _Charts,
    chart_id: str,
    caption: str,
    chart: tuple[str, Sequence[Mapping[str, Any]], str],
) -> str:
    """The figure of `_spend_chart(*chart)` (title, priced rows, label key), or nothing
    when no row has a price."""
    return charts.draw(chart_id, caption, lambda: _spend_chart(*chart)) if chart[1] else ""


def _spend_chart(title: str, rows: Sequence[Mapping[str, Any]], key: str) -> str:
    before: list[float] = []
    after: list[float] = []
    before_labels: list[str] = []
    after_labels: list[str] = []
    for row in rows:
        cost = _decimal(row.get("cost_usd"), f"{key}.cost_usd") or Decimal(0)
        saved = _decimal(
            (row.get("cost_saved_usd_by_lever") or {}).get("combined"), f"{key}.combined"
        ) or Decimal(0)
        before.append(float(cost))
        after.append(float(cost - saved))
        before_labels.append(usd(cost))
        after_labels.append(f"{usd(cost - saved)}  (saves {usd(saved)})")
    return paired_bars_svg(
        PairedBars(
            title=title,
            axis_label="dollars",
            rows=[str(row.get(key)) for row in rows],
            before=before,
            after=after,
            before_labels=before_labels,
            after_labels=after_labels,
        )
    )


def _priced_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [row for row in rows if row.get("cost_usd") is not None]


def _lever_names(report: Mapping[str, Any]) -> list[str]:
    return [str(lever.get("name")) for lever in report.get("levers") or []] + ["combined"]


def _saved_header(lever: str) -> str:
    return "saved, all levers" if lever == "combined" else f"saved: {lever}"


def _saved_by_lever(row: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    saved = row.get("cost_saved_usd_by_lever") or {}
    return [_e(_money(saved.get(name), f"cost_saved_usd_by_lever.{name}")) for name in names]


def _saved_fields(combined: Mapping[str, Any]) -> dict[str, Any]:
    """The combined replay's figures under the names a lever row uses."""
    return {
        "cost_saved_usd": combined.get("cost_saved_usd"),
        "share_saved": combined.get("share_saved"),
        "requests_changed": None,
        "input_tokens_saved": None,
        "output_tokens_saved": None,
    }


def _details(note: Any, details: Any) -> str:
    items = [f"<li>{_e(note)}</li>"] if note else []
    if isinstance(details, Mapping):
        items += [
            f"<li>{_e(key)}: {_e(_field(str(key), value))}</li>" for key, value in details.items()
        ]
    return f'<ul class="details">{"".join(items)}</ul>' if items else ""


def _table(
    columns: Sequence[str | tuple[str, bool]],
    rows: Sequence[Sequence[str]],
    table_id: str,
    *,
    header: bool = True,
    id_column: bool = False,
) -> str:
    """A table of already-escaped cells; a column given as (name, True) is numeric."""
    numeric = [isinstance(column, tuple) and column[1] for column in columns]
    names = [column[0] if isinstance(column, tuple) else column for column in columns]
    classes = [
        ' class="num"' if is_num else (' class="id"' if id_column and i == 0 else "")
        for i, is_num in enumerate(numeric)
    ]
    head = "".join(f"<th{css}>{_e(name)}</th>" for name, css in zip(names, classes, strict=True))
    body = "".join(
        "<tr>"
        + "".join(f"<td{css}>{cell}</td>" for cell, css in zip(row, classes, strict=True))
        + "</tr>"
        for row in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    kind = "" if header else ' class="kv"'
    table = f'<table id="{table_id}"{kind}>{thead}<tbody>{body}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def _e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _share(value: Any) -> str:
    if value is None:
        return "–"
    share = float(value)
    # a real saving never reads 0.0%, as money never reads $0.0000
    return "<0.1%" if 0 < share < 0.0005 else f"{share:.1%}"


def _field(key: str, value: Any) -> str:
    """A settings or details value for people; `*_usd` fields are money."""
    if key.endswith("_usd") and (value is None or isinstance(value, str)):
        return _money(value, key)
    return _setting(value)


def _setting(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} → {_setting(item)}" for key, item in value.items())
    return str(value)


def _bytes(count: int) -> str:
    if count < 1000:
        return plural(count, "byte")
    size = float(count)
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:,.1f} {unit}"


def _money(value: Any, field: str) -> str:
    """A money field of the report for people; null means no request of it had a price."""
    amount = _decimal(value, field)
    return "no price" if amount is None else usd(amount)


def _decimal(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = None
        if amount is not None and amount.is_finite():
            return amount
    raise InvalidArgumentError(
        f"report field {field} must be a decimal string (money) or null, got {shown(value)}"
    )
