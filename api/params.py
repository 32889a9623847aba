r"""Bounded path and query parameters, and the guard that keeps control characters and unstorable numbers out.

Path ids, offsets and limits are typed aliases (:data:`IdPath`, :data:`Offset`…) whose bounds are the
columns': a path id of 2³¹ is a 422 problem naming ``/path/…``, not PostgreSQL's ``integer out of range``.

:func:`refuse_unstorable_input` runs on every request (an application dependency, like ``authorize``). It
refuses, with one 422 problem listing every place, what no column can store however the route declares it:
control characters in path and query values, NUL and control characters other than tab and newlines in any
string (or key) of a JSON body — free-form members such as GeoJSON ``properties`` included — integers beyond
``BIGINT`` and non-finite numbers (``1e400`` parses to infinity) anywhere in a JSON body.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Path, Query, Request

from core.bounds import INT32_MAX, INT64_MAX, control_characters
from core.errors import InvalidInput

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="A row id (1 … 2³¹ − 1).")]
IdQuery = Annotated[int, Query(ge=1, le=INT32_MAX)]
Offset = Annotated[int, Query(ge=0, le=INT32_MAX)]
JSON_MEDIA_TYPES = ("application/json", "application/geo+json")
#: Problems listed at most; a body full of NULs is one answer, not a megabyte of pointers.
MAX_LISTED = 50


def _pointer(parts: list[str | int]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _walk(root: Any, problems: list[dict[str, str]]) -> None:
    """Append the unstorable places of a parsed JSON document (iteratively: any depth JSON parses is fine)."""
    stack: list[tuple[Any, list[str | int]]] = [(root, ["body"])]
    while stack and len(problems) < MAX_LISTED:
        value, parts = stack.pop()
        if isinstance(value, str):
            found = control_characters(value, allow_newlines=True)
            if found:
                reason = f"control characters are not accepted in text ({', '.join(found)})"
                problems.append({"pointer": _pointer(parts), "reason": reason})
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not -INT64_MAX - 1 <= value <= INT64_MAX:
                problems.append({"pointer": _pointer(parts), "reason": "integer beyond the 64-bit range"})
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append({"pointer": _pointer(parts), "reason": "number beyond the finite range"})
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if control_characters(str(key)):
                    problems.append(
                        {"pointer": _pointer([*parts, key]), "reason": "control characters in a member name"}
                    )
                stack.append((item, [*parts, key]))
        elif isinstance(value, list):
            stack.extend((item, [*parts, index]) for index, item in reversed(list(enumerate(value))))


def unstorable_places(
    path_params: dict[str, Any], query: list[tuple[str, str]], body: Any, *, has_body: bool
) -> list[dict[str, str]]:
    r"""Return the places of a request that no column can store (empty when the request is clean).

    >>> places = unstorable_places({"code": "a\x00"}, [("q", "ok")], {"n": 2**64}, has_body=True)
    >>> [place["pointer"] for place in places]
    ['/path/code', '/body/n']
    """
    problems: list[dict[str, str]] = []
    for name, value in path_params.items():
        found = control_characters(str(value))
        if found:
            problems.append(
                {"pointer": f"/path/{name}", "reason": f"control characters are not accepted ({', '.join(found)})"}
            )
    for name, value in query:
        found = control_characters(name) or control_characters(value)
        if found:
            problems.append(
                {"pointer": f"/query/{name}", "reason": f"control characters are not accepted ({', '.join(found)})"}
            )
    if has_body:
        _walk(body, problems)
    return problems[:MAX_LISTED]


async def refuse_unstorable_input(request: Request) -> None:
    """Refuse a request carrying text or numbers no column can store (see the module docstring).

    Raises:
        InvalidInput: One problem with every offending place as ``errors``.
    """
    body: Any = None
    has_body = False
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        try:
            body = await request.json()  # parsed once: Starlette keeps the parse FastAPI already made
            has_body = True
        except ValueError:
            has_body = False  # not JSON: the route's own validation answers
    problems = unstorable_places(dict(request.path_params), request.query_params.multi_items(), body, has_body=has_body)
    if problems:
        raise InvalidInput("the request carries text or numbers that cannot be stored", problems)
