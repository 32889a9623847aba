"""The password policy: length, character classes, not the user name, not a shipped common password."""

from __future__ import annotations

import pytest

from api.seed import DEMO_ORGS, DemoOrg
from core.errors import InvalidInput
from core.passwords import (
    IS_COMMON,
    IS_USER_NAME,
    TOO_LONG,
    TOO_SHORT,
    common_passwords,
    password_problems,
    require_acceptable_password,
)


def test_the_common_password_list_ships_inside_the_package() -> None:
    listed = common_passwords()
    assert len(listed) > 19_000 and {"123456", "password", "qwerty"} <= listed


@pytest.mark.parametrize("demo", DEMO_ORGS, ids=lambda demo: demo.username)
def test_the_demo_passwords_meet_the_policy(demo: DemoOrg) -> None:
    assert password_problems(demo.password, username=demo.username) == []


def test_a_long_mixed_but_breached_password_is_refused() -> None:
    # Twelve characters or more, three classes, and still on the list (case does not help).
    assert password_problems("John!20130605AT1753", username="nx-bureau") == [IS_COMMON]


def test_every_problem_is_named_at_once() -> None:
    assert password_problems("Nx-Bureau-1", username="Nx-Bureau-1") == [TOO_SHORT.format(min_length=12), IS_USER_NAME]
    assert password_problems("Aa1-" * 65, username="x") == [TOO_LONG.format(max_length=256)]
    with pytest.raises(InvalidInput) as raised:
        require_acceptable_password("aaaaaaaaaaaa", username="x")
    assert [problem["pointer"] for problem in raised.value.problems] == ["/password"]
    assert len(raised.value.problems) == 1  # long enough, but one class of characters only
