"""Load the packaged parameter sets (the only file reading in ``carbon`` methodologies' path).

Files live in ``carbon/parameters/data/<id>@<version>.yaml``. Numbers are parsed as exact ``Decimal``
from their YAML text (never through ``float``), and the document is validated into a frozen
:class:`~carbon.parameters.models.ParameterSet`, where an unknown key is an error. Replacing a
provisional set by a confirmed one is a data change: add a file with a new version.

>>> s = load_parameter_set("ipcc-2006-2019-forest-land", "1")
>>> s.parameter("carbon_fraction.default").value
Decimal('0.47')
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from carbon.parameters.models import ParameterSet


class _DecimalLoader(yaml.SafeLoader):
    """A safe YAML loader that reads floats as exact decimals."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    assert isinstance(node, yaml.ScalarNode)
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def parse_parameter_set(text: str) -> ParameterSet:
    """Parse and validate the YAML text of one parameter set.

    Raises:
        pydantic.ValidationError: A missing or unknown key, a bad value, an unlabelled ❌ value.
    """
    document: Any = yaml.load(text, Loader=_DecimalLoader)
    return ParameterSet.model_validate(document)


def available_parameter_sets() -> list[tuple[str, str]]:
    """Return the ``(id, version)`` of every packaged parameter set, sorted."""
    folder = resources.files("carbon.parameters") / "data"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            set_id, _, version = entry.name.removesuffix(".yaml").partition("@")
            found.append((set_id, version))
    return sorted(found)


@lru_cache(maxsize=32)
def load_parameter_set(set_id: str, version: str) -> ParameterSet:
    """Load a packaged parameter set by id and version.

    Raises:
        KeyError: No such packaged set.
    """
    if (set_id, version) not in available_parameter_sets():
        raise KeyError(f"no parameter set {set_id}@{version}; available: {available_parameter_sets()}")
    path = resources.files("carbon.parameters") / "data" / f"{set_id}@{version}.yaml"
    parameter_set = parse_parameter_set(path.read_text(encoding="utf-8"))
    if (parameter_set.id, parameter_set.version) != (set_id, version):
        raise ValueError(f"{path.name} declares {parameter_set.id}@{parameter_set.version}")
    return parameter_set
