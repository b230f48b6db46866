"""The run filter language (tracelet_core.filters): parsing, errors that point at the word, matching."""

from __future__ import annotations

from datetime import datetime

import pytest

from tracelet_core.filters import Condition, FilterError, RunFacts, parse_filter, parse_time

NOW = 1_800_000_000.0
RUN = RunFacts(
    status="FINISHED",
    name="baseline run",
    experiment="digits",
    run_id="abc123",
    created=NOW - 3600,
    tags={"team": "vision"},
    params={"lr": "0.05", "optimizer/name": "adam"},
    metrics={"val/acc": 0.91},
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("status=FINISHED", True),
        ("status=finished", True),
        ("status!=FAILED", True),
        ("tag.team=vision param.lr>0.01", True),
        ("param.lr>0.1", False),
        ("param.lr<=0.05 param.lr>=0.05", True),
        ("param.optimizer/name=adam", True),
        ("metric.val/acc>=0.9", True),
        ("metric.val/acc>0.95", False),
        ("name~BASE", True),
        ("'name=baseline run'", True),
        ("experiment=other", False),
        ("id~abc", True),
        ("tag.missing=x", False),
        ("tag.missing!=x", True),
        ("since=2h", True),
        ("since=30m", False),
        ("until=30m", True),
        ("until=2h", False),
    ],
)
def test_a_filter_matches_what_it_says(text: str, expected: bool) -> None:
    assert parse_filter(text, now=NOW).matches(RUN) is expected


def test_numbers_compare_as_numbers_and_text_as_text() -> None:
    run = RunFacts(params={"epochs": "10", "model": "b"})
    assert parse_filter("param.epochs>9").matches(run)  # as text "10" < "9"
    assert parse_filter("param.model>a").matches(run)


def test_words_and_one_string_give_the_same_filter() -> None:
    assert parse_filter(["name=baseline run", "param.lr>0.01"]).conditions == (
        Condition("name", "=", "baseline run"),
        Condition("param.lr", ">", "0.01"),
    )
    assert parse_filter(["name=baseline run"]).matches(RUN)
    assert parse_filter("STATUS=finished").conditions[0].field == "status"


def test_since_takes_a_duration_or_an_iso_date() -> None:
    assert parse_time("2d", now=NOW) == NOW - 2 * 86400
    assert parse_time("2026-01-31") == datetime(2026, 1, 31).timestamp()
    assert parse_filter("since=2026-01-31T12:00").conditions[0].value == repr(datetime(2026, 1, 31, 12).timestamp())


@pytest.mark.parametrize(
    ("text", "reason", "marked"),
    [
        ("status=FINISHED stauts=FAILED", "unknown field 'stauts' (did you mean 'status'?)", "stauts"),
        ("status=FINISHED lr", "'lr' is not FIELD OP VALUE", "lr"),
        ("param.=1", "'param.' needs a key", "param."),
        ("name=", "name= needs a value", "name="),
        ("since>2d", "since takes '='", ">"),
        ("since=yesterday", "'yesterday' is neither a duration", "yesterday"),
        ("name='unclosed", "No closing quotation", "name='unclosed"),
    ],
)
def test_a_mistake_is_pointed_at(text: str, reason: str, marked: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    error = caught.value
    assert reason in str(error)
    assert text[error.start : error.end] == marked
    lines = str(error).splitlines()
    assert lines[1] == f"  {text}" and lines[2] == "  " + " " * error.start + "^" * len(marked)


def test_only_fields_of_the_contents_need_them_read() -> None:
    assert not parse_filter("status=FINISHED since=2d").needs_contents
    assert parse_filter("metric.loss<1").needs_contents
