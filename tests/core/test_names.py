"""KeySanitizer and truncate: keys and values made valid for one tracker, distinct keys kept distinct."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelet_core.names import TRUNCATION_MARKER, KeySanitizer, truncate
from tracelet_core.trackers.mlflow.backend import _INVALID_KEY, MAX_KEY_LENGTH, _path_safe


@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=30))
def test_sanitised_keys_are_valid_distinct_and_stable(raw: list[str]) -> None:
    sanitize = KeySanitizer("mlflow", _INVALID_KEY, MAX_KEY_LENGTH, warn=lambda k, m: None)
    out = {key: _path_safe(sanitize(key)) for key in raw}
    for key, clean in out.items():
        assert re.fullmatch(r"[/\w.\- :]+", clean), clean
        assert len(clean) <= MAX_KEY_LENGTH
        assert _path_safe(sanitize(key)) == clean  # the same key always maps to the same name
    distinct_raw = {sanitize(key) for key in set(raw)}
    assert len(distinct_raw) == len(set(raw))


@given(st.text(max_size=500), st.integers(min_value=60, max_value=400))
def test_truncate_respects_limit_and_says_so(text: str, limit: int) -> None:
    out = truncate(text, limit)
    assert len(out) <= limit
    if len(text) > limit:
        assert out.endswith(TRUNCATION_MARKER.format(total=len(text)))
    else:
        assert out == text


# --- KeySanitizer ----------------------------------------------------------------------------------

_patterns = st.sampled_from(
    [_INVALID_KEY, re.compile(r"[\x00-\x1f\x7f]"), re.compile(r"[^\w-]"), re.compile("[^a-z0-9_-]")]
)


@settings(max_examples=200)
@given(
    st.lists(st.text(alphabet=st.sampled_from("ab_-@ 1é/"), max_size=30), max_size=40),
    _patterns,
    st.one_of(st.none(), st.integers(16, 30)),
)
def test_sanitised_names_are_unique_valid_within_limit_and_stable(
    raw: list[str], invalid: re.Pattern[str], max_length: int | None
) -> None:
    sanitize = KeySanitizer("t", invalid, max_length, warn=lambda k, m: None)
    names = [sanitize(key) for key in raw]
    for key, name in zip(raw, names, strict=True):
        assert invalid.search(name) is None
        assert max_length is None or len(name) <= max_length
        assert sanitize(key) == name
    assert len(set(names)) == len(set(raw))


@given(st.lists(st.text(), max_size=20), st.integers(16, 60))
def test_sanitised_arbitrary_text_is_unique_and_valid(raw: list[str], max_length: int) -> None:
    sanitize = KeySanitizer("mlflow", _INVALID_KEY, max_length, warn=lambda k, m: None)
    names = {key: sanitize(key) for key in raw}
    assert len(set(names.values())) == len(names)
    assert all(_INVALID_KEY.search(n) is None and 0 < len(n) <= max_length for n in names.values())


def test_long_keys_with_a_common_prefix_stay_apart_and_within_the_limit() -> None:
    first, second = "x" * 300, "x" * 300 + "y"
    forward = KeySanitizer("mlflow", _INVALID_KEY, MAX_KEY_LENGTH, warn=lambda k, m: None)
    backward = KeySanitizer("mlflow", _INVALID_KEY, MAX_KEY_LENGTH, warn=lambda k, m: None)
    names = [forward(first), forward(second)]
    assert [backward(second), backward(first)] == names[::-1]  # the name depends on the key, not on the order
    assert names[0] != names[1]
    assert all(len(n) == MAX_KEY_LENGTH and re.fullmatch(r"x+-[0-9a-f]{8}", n) for n in names)


def test_lone_surrogates_in_long_keys_do_not_break_hashing() -> None:
    sanitize = KeySanitizer("aim", re.compile(r"[\x00-\x1f\x7f]"), 20, warn=lambda k, m: None)
    assert len(sanitize("\ud800" * 30)) == 20


def test_a_valid_key_never_joins_the_series_of_a_sanitised_key() -> None:
    warnings: list[str] = []
    sanitize = KeySanitizer("mlflow", _INVALID_KEY, MAX_KEY_LENGTH, warn=lambda k, m: warnings.append(m))
    assert sanitize("x@1") == "x_1"
    assert sanitize("x_1") == "x_1_2"
    assert sanitize("x_1_2") == "x_1_2_2"
    assert "'x_1' already records the key 'x@1'" in warnings[1] and "'x_1_2'" in warnings[1]


def test_numbered_suffixes_stay_within_the_limit() -> None:
    sanitize = KeySanitizer("t", re.compile(r"[^\w-]"), 16, warn=lambda k, m: None)
    names = [sanitize(key) for key in ["a" * 16, *("a" * 15 + c for c in "@#$%^&*()")]]
    assert len(set(names)) == len(names)
    assert all(len(n) <= 16 for n in names)


@pytest.mark.parametrize(
    ("invalid", "max_length"), [(re.compile(r"[^a-z]"), None), (re.compile(r"-"), None), (_INVALID_KEY, 15)]
)
def test_sanitiser_refuses_rules_that_leave_no_room_for_suffixes(invalid: re.Pattern[str], max_length: int) -> None:
    with pytest.raises(ValueError, match="KeySanitizer for t"):
        KeySanitizer("t", invalid, max_length)
