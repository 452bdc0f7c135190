"""Reading the dashboard's stored documents back: each plain field coerced, a missing one refused."""

from dataclasses import dataclass

import pytest

from storage.documents import plain_fields


@dataclass
class Doc:
    tags: list[str]
    keys: int
    duration_s: float
    done: bool
    name: str
    cut: int = 0


def test_plain_fields_are_coerced_and_the_rest_left_to_the_reader():
    data = {"tags": ["x"], "keys": "12", "duration_s": 3, "done": 1, "name": 7, "other": "ignored"}
    assert plain_fields(Doc, data) == {"keys": 12, "duration_s": 3.0, "done": True, "name": "7"}
    assert plain_fields(Doc, {**data, "cut": 5.0})["cut"] == 5


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"keys": 1, "duration_s": 1.0, "done": True}, KeyError),  # name missing, no default
        ({"keys": "twelve", "duration_s": 1.0, "done": True, "name": ""}, ValueError),
        ({"keys": [1], "duration_s": 1.0, "done": True, "name": ""}, TypeError),
    ],
)
def test_a_malformed_document_is_refused(data, error):
    with pytest.raises(error):
        plain_fields(Doc, data)
