"""Land-cover legends: what each class of a run's land-cover raster is, as versioned data (pure).

A legend maps every class code of a land-cover product to

- its **ecosystem type** (the columns of the SEEA-EA supply tables and of the extent account: forest,
  shrubland, grassland, wetland, cropland, urban, desert — the classes of the Chinese GEP specifications,
  where lakes, reservoirs, rivers and marshes are all wetland 湿地);
- its **RWEQ cover type** (which vegetation coefficient a of sand fixation applies; none = no wind
  erosion is accounted on the class, e.g. water or built-up land);
- its **flood storage** kind (lake, reservoir or marsh; flood regulation counts only those classes);
- whether it **transpires** (vegetation cooling) or is a **water surface** (evaporation cooling) for
  climate regulation.

Legends are TOML files ``gep/data/legend_<name>.toml`` (id, version, source, one table per class), loaded
into frozen models with ``extra="forbid"``; a run names its legend and records its hash (RFC 8785 for new runs,
the reference naming its ``hash_scheme``). A raster class
missing from the legend is refused by the kernels' lookups (never silently dropped).

>>> legend = load_legend("legend_synthetic_jingyuan")
>>> legend.classes[6].flood_storage, legend.classes[6].ecosystem_type
('lake', <EcosystemType.WETLAND: 'wetland'>)
>>> legend.ecosystem_type_of(5)
'cropland'
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.canonical import JCS_SCHEME, scheme_hash, scheme_reference
from core.errors import InvalidInput, validation_problems


class EcosystemType(StrEnum):
    """Ecosystem types of the supply tables (Chinese GEP classes; wetland includes open water)."""

    FOREST = "forest"
    SHRUBLAND = "shrubland"
    GRASSLAND = "grassland"
    WETLAND = "wetland"
    CROPLAND = "cropland"
    URBAN = "urban"
    DESERT = "desert"
    OTHER = "other"


RweqCoverType = Literal["woodland", "grassland", "shrub", "bare", "sandy", "cropland"]
FloodStorage = Literal["lake", "reservoir", "marsh"]


class LegendClass(BaseModel):
    """One class of a land-cover legend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    ecosystem_type: EcosystemType
    rweq_cover_type: RweqCoverType | None = None
    flood_storage: FloodStorage | None = None
    transpires: bool = False
    water_surface: bool = False


class Legend(BaseModel):
    """A versioned land-cover legend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    source: str = Field(min_length=1)
    note: str = ""
    classes: dict[int, LegendClass] = Field(min_length=1)

    def ecosystem_type_of(self, code: int) -> str:
        """Return the ecosystem type of class ``code``.

        Raises:
            InvalidInput: The class is not in the legend.
        """
        found = self.classes.get(int(code))
        if found is None:
            raise InvalidInput(
                f"land-cover class {code} is not in legend {self.id} v{self.version}",
                [{"legend": self.id, "class": int(code), "reason": "class-not-in-legend"}],
            )
        return found.ecosystem_type.value

    def codes(self, **flags: Any) -> dict[int, float]:
        """Return ``{code: 1.0 if the class has every flag value else 0.0}`` (a lookup table for kernels).

        >>> load_legend("legend_synthetic_jingyuan").codes(flood_storage="marsh")[8]
        1.0
        """
        return {
            code: float(all(getattr(klass, key) == value for key, value in flags.items()))
            for code, klass in self.classes.items()
        }

    def reference(self, scheme: str = JCS_SCHEME) -> dict[str, str]:
        """Return what a run records about this legend: id, version and content hash (and its scheme, ADR 033)."""
        return scheme_reference(self.id, self.version, scheme_hash(self.model_dump(mode="json"), scheme), scheme)


def load_legend(name: str) -> Legend:
    """Load the packaged legend ``gep/data/<name>.toml``.

    Raises:
        InvalidInput: No such legend, or the legend is invalid (every problem listed).
    """
    resource = resources.files("gep").joinpath("data", f"{name}.toml")
    if not name.startswith("legend_") or not resource.is_file():
        raise InvalidInput(f"no packaged land-cover legend {name!r}", [{"legend": name, "reason": "not-found"}])
    raw: dict[str, Any] = tomllib.loads(resource.read_text(encoding="utf-8"))
    raw["classes"] = {int(code): klass for code, klass in raw.get("classes", {}).items()}
    try:
        return Legend.model_validate(raw)
    except ValidationError as error:
        problems = validation_problems(error.errors(), legend=name)
        raise InvalidInput(f"{name} is not a valid land-cover legend ({len(problems)} problems)", problems) from error
