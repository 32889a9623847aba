"""One :class:`IndicatorSpec` per GEP indicator, registered once; the engine, valuation and tables read it (pure).

An indicator is declared in one place, as InVEST declares a model in its ``MODEL_SPEC``: the input roles it
reads (each role declared once in :data:`ROLES` with its unit and kind), its run kernel
(:mod:`gep.kernels`), the physical unit of its quantity, its valuation rule with the price keys it reads
(:mod:`gep.valuation`), the legend fields it needs, the run settings it requires, the halo it reads
around a tile and, for the indicators finished after the merge, its basis components
(:mod:`gep.regional`). Everything else is derived from it: the run configuration's checks
(:class:`gep.plan.RunConfig`), which rasters a tile reads, the kernels a tile runs, the unit values and
the valuation record, the supply lines of the tables, and :func:`describe_indicators`, the
introspectable form for pages and the API.

The registry is explicit and immutable (:meth:`IndicatorRegistry.register` returns a new registry and
refuses a duplicate code or a role that is not declared).

==========================  ======  =====================================================
indicator                   unit    unit value (元 per unit)
==========================  ======  =====================================================
water_conservation          m3      reservoir_cost
flood_regulation            m3      reservoir_cost
soil_retention              t       λ / ρ_soil · dredging_cost + c_N · P_N + c_P · P_P
sand_fixation               t       sand_control_cost / (ρ_sand · h)
carbon_sequestration        tCO2    carbon_price
oxygen_release              t       oxygen_price
climate_regulation          kWh     electricity_price
air_purification_<x>        t       treatment_cost_<x>   (so2, nox, dust)
water_purification_<x>      t       treatment_cost_<x>   (cod, nh3n)
==========================  ======  =====================================================

>>> from gep.prices import load_table
>>> prices, coefficients = load_table("prices_ganzi_2010"), load_table("coefficients_default")
>>> DEFAULT_INDICATORS.get("water_conservation").unit_value(prices, coefficients).yuan_per_unit
Decimal('7.06')
>>> spec = DEFAULT_INDICATORS.get("sand_fixation")
>>> spec.physical_unit, spec.legend_fields, spec.valuation.price_keys
('t', ('rweq_cover_type',), ('sand_control_cost',))
>>> [(role.id, role.unit) for role in DEFAULT_INDICATORS.roles_of("carbon_sequestration")]
[('nep', 'gC/m2')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from core.errors import InvalidInput
from gep import kernels
from gep.coefficients import ls_coefficients
from gep.kernels import CAPACITY, FLOOD_STORAGE_KINDS, Kernel, ParameterLoader
from gep.prices import ParameterTable
from gep.valuation import SAND_FIXATION_RULE, SOIL_RETENTION_RULE, ServiceClass, UnitValue, ValuationRule, price_rule

Kind = Literal["categorical", "continuous"]
#: Run settings an indicator can require (fields of :class:`gep.plan.RunConfig`).
RunSetting = Literal["negative_balance", "cover_unit", "emissions_t", "reservoir_capacity_m3"]


@dataclass(frozen=True)
class RoleSpec:
    """An input role: a raster (a registered layer or a file) or a constant, in one unit."""

    id: str
    unit: str
    kind: Kind
    about: str

    def describe(self) -> dict[str, str]:
        """Return the role as JSON-able data."""
        return {"id": self.id, "unit": self.unit, "kind": self.kind, "about": self.about}


def _roles(*rows: tuple[str, str, Kind, str]) -> Mapping[str, RoleSpec]:
    return MappingProxyType({row[0]: RoleSpec(*row) for row in rows})


#: Pollutants of the purification indicators: (indicator, uptake role, name).
PURIFICATION = (
    ("air_purification_so2", "uptake_so2", "大气净化·二氧化硫"),
    ("air_purification_nox", "uptake_nox", "大气净化·氮氧化物"),
    ("air_purification_dust", "uptake_dust", "大气净化·工业粉尘"),
    ("water_purification_cod", "uptake_cod", "水质净化·化学需氧量"),
    ("water_purification_nh3n", "uptake_nh3n", "水质净化·氨氮"),
)

#: Every input role, in the order rasters are listed and read.
ROLES: Mapping[str, RoleSpec] = _roles(
    ("precipitation", "mm", "continuous", "Annual precipitation P."),
    ("evapotranspiration", "mm", "continuous", "Annual actual evapotranspiration ET."),
    ("runoff_coefficient", "1", "continuous", "Storm runoff coefficient α (R = α·P)."),
    ("nep", "gC/m2", "continuous", "Net ecosystem productivity."),
    ("dem", "m", "continuous", "Elevation, for the slope and LS factor (read with a one-pixel halo)."),
    ("erosivity", "MJ.mm/(ha.h)", "continuous", "RUSLE rainfall erosivity R."),
    ("erodibility", "t.ha.h/(ha.MJ.mm)", "continuous", "RUSLE soil erodibility K."),
    ("cover_factor", "1", "continuous", "RUSLE cover-management factor C."),
    ("practice_factor", "1", "continuous", "RUSLE support-practice factor P."),
    ("land_cover", "class", "categorical", "Land-cover class codes, read through the run's legend."),
    ("wind_weather_factor", "kg/m", "continuous", "RWEQ weather factor WF."),
    ("erodible_fraction", "1", "continuous", "RWEQ erodible fraction EF."),
    ("crust_factor", "1", "continuous", "RWEQ soil crust factor SCF."),
    ("roughness_factor", "1", "continuous", "RWEQ surface roughness factor K'."),
    (
        "vegetation_cover",
        "percent",
        "continuous",
        "Vegetation cover SC for RWEQ; in percent, or 1 (a fraction) when the run's cover_unit is fraction.",
    ),
    ("transpiration_heat", "kJ/(m2.d)", "continuous", "Heat absorbed by vegetation transpiration."),
    ("water_evaporation", "mm", "continuous", "Evaporation depth of water surfaces."),
    *((role, "t/km2", "continuous", f"Uptake capacity per km² and year ({name}).") for _, role, name in PURIFICATION),
)


@dataclass(frozen=True)
class IndicatorSpec:
    """Everything about one indicator, declared once.

    ``kernel`` returns the per-pixel quantity as :data:`gep.kernels.QUANTITY` for an element-wise
    indicator, or one array per basis component in ``components`` for a regional one (finished after the
    merge by :func:`gep.regional.regional_result`). ``parameters`` loads what the kernel reads from the
    coefficient table (once per run). ``halo`` maps a role to the pixels read around a tile.
    """

    code: str
    name_zh: str
    service_class: ServiceClass
    physical_unit: str
    roles: tuple[str, ...]
    kernel: Kernel
    valuation: ValuationRule
    about: str = ""
    legend_fields: tuple[str, ...] = ()
    settings: tuple[RunSetting, ...] = ()
    halo: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    components: tuple[str, ...] = ()
    parameters: ParameterLoader | None = None

    @property
    def regional(self) -> bool:
        """True if the indicator is finished per region after the merge (a second pass)."""
        return bool(self.components)

    @property
    def needs_legend(self) -> bool:
        """True if the indicator reads the land-cover legend."""
        return bool(self.legend_fields)

    def unit_value(self, prices: ParameterTable, coefficients: ParameterTable) -> UnitValue:
        """Return 元 per physical unit from the run's tables (see :class:`gep.valuation.ValuationRule`)."""
        return self.valuation.unit_value(prices, coefficients)

    def describe(self) -> dict[str, Any]:
        """Return the indicator as JSON-able data: what pages show and the API lists."""
        return {
            "code": self.code,
            "name_zh": self.name_zh,
            "service_class": self.service_class.value,
            "physical_unit": self.physical_unit,
            "about": self.about,
            "inputs": [ROLES[role].describe() for role in self.roles],
            "kernel": f"{self.kernel.__module__}.{self.kernel.__qualname__}",
            "valuation": {**self.valuation.describe(), "price_keys": list(self.valuation.price_keys)},
            "legend_fields": list(self.legend_fields),
            "settings": list(self.settings),
            "halo": dict(self.halo),
            "components": list(self.components),
            "pass": "regional" if self.regional else "element-wise",
        }


@dataclass(frozen=True)
class IndicatorRegistry:
    """An immutable set of indicator specs keyed by code, in registration order."""

    indicators: Mapping[str, IndicatorSpec] = field(default_factory=lambda: MappingProxyType({}))

    def register(self, indicator: IndicatorSpec) -> IndicatorRegistry:
        """Return a new registry with ``indicator`` added.

        Raises:
            InvalidInput: The code is already registered, or the indicator reads an undeclared role.
        """
        if indicator.code in self.indicators:
            raise InvalidInput(f"indicator {indicator.code!r} is already registered", [{"code": indicator.code}])
        unknown = [role for role in (*indicator.roles, *indicator.halo) if role not in ROLES]
        if unknown:
            raise InvalidInput(
                f"indicator {indicator.code!r} reads undeclared roles",
                [{"code": indicator.code, "role": role, "reason": "unknown-role"} for role in unknown],
            )
        return IndicatorRegistry(MappingProxyType({**self.indicators, indicator.code: indicator}))

    def get(self, code: str) -> IndicatorSpec:
        """Return the indicator ``code``.

        Raises:
            InvalidInput: No such indicator.
        """
        if code not in self.indicators:
            raise InvalidInput(f"unknown indicator {code!r}", [{"code": code, "reason": "unknown-indicator"}])
        return self.indicators[code]

    def codes(self) -> tuple[str, ...]:
        """Return the registered codes in registration order."""
        return tuple(self.indicators)

    def specs(self) -> tuple[IndicatorSpec, ...]:
        """Return the registered specs in registration order."""
        return tuple(self.indicators.values())

    def roles_of(self, code: str) -> tuple[RoleSpec, ...]:
        """Return the input roles indicator ``code`` reads, with their units."""
        return tuple(ROLES[role] for role in self.get(code).roles)

    def regional_codes(self) -> frozenset[str]:
        """Return the codes of the indicators finished per region after the merge."""
        return frozenset(code for code, spec in self.indicators.items() if spec.regional)

    def legend_codes(self) -> frozenset[str]:
        """Return the codes of the indicators that read the land-cover legend."""
        return frozenset(code for code, spec in self.indicators.items() if spec.needs_legend)


def _default_registry() -> IndicatorRegistry:
    regulating = ServiceClass.REGULATING
    reservoir = price_rule("reservoir_cost", "yuan/m3")
    rows = [
        IndicatorSpec(
            "water_conservation",
            "水源涵养",
            regulating,
            "m3",
            ("precipitation", "evapotranspiration", "runoff_coefficient"),
            kernels.water_conservation,
            reservoir,
            about="Water balance P − R − ET over the pixel; the run names its negative-balance policy.",
            settings=("negative_balance",),
        ),
        IndicatorSpec(
            "soil_retention",
            "土壤保持",
            regulating,
            "t",
            ("dem", "erosivity", "erodibility", "cover_factor", "practice_factor"),
            kernels.soil_retention_kernel,
            SOIL_RETENTION_RULE,
            about="RUSLE potential minus actual soil loss, R·K·LS·(1 − C·P); local LS from the DEM.",
            halo=MappingProxyType({"dem": 1}),
            parameters=ls_coefficients,
        ),
        IndicatorSpec(
            "sand_fixation",
            "防风固沙",
            regulating,
            "t",
            (
                "wind_weather_factor",
                "erodible_fraction",
                "crust_factor",
                "roughness_factor",
                "vegetation_cover",
                "land_cover",
            ),
            kernels.sand_fixation_kernel,
            SAND_FIXATION_RULE,
            about="RWEQ potential minus actual wind erosion; the run names the cover unit.",
            legend_fields=("rweq_cover_type",),
            settings=("cover_unit",),
            parameters=kernels.sand_fixation_parameters,
        ),
        IndicatorSpec(
            "flood_regulation",
            "洪水调蓄",
            regulating,
            "m3",
            ("land_cover",),
            kernels.flood_regulation_basis,
            reservoir,
            about="Lake, reservoir and marsh storage, from each region's areas and tables (second pass).",
            legend_fields=("flood_storage",),
            settings=("reservoir_capacity_m3",),
            components=FLOOD_STORAGE_KINDS,
            parameters=kernels.regional_parameters,
        ),
        IndicatorSpec(
            "carbon_sequestration",
            "固碳",
            regulating,
            "tCO2",
            ("nep",),
            kernels.carbon_sequestration,
            price_rule("carbon_price", "yuan/tCO2"),
            about="NEP × 44/12.",
        ),
        IndicatorSpec(
            "oxygen_release",
            "释氧",
            regulating,
            "t",
            ("nep",),
            kernels.oxygen_release,
            price_rule("oxygen_price", "yuan/t"),
            about="NEP × 32/12.",
        ),
        IndicatorSpec(
            "climate_regulation",
            "气候调节",
            regulating,
            "kWh",
            ("transpiration_heat", "water_evaporation", "land_cover"),
            kernels.climate_regulation_kernel,
            price_rule("electricity_price", "yuan/kWh"),
            about="Transpiration cooling on transpiring classes plus evaporation cooling on water surfaces.",
            legend_fields=("transpires", "water_surface"),
            parameters=kernels.climate_parameters,
        ),
    ]
    for code, role, name in PURIFICATION:
        pollutant = code.rsplit("_", 1)[1]
        rows.append(
            IndicatorSpec(
                code,
                name,
                regulating,
                "t",
                (role,),
                kernels.purification_basis(role),
                price_rule(f"treatment_cost_{pollutant}", "yuan/t"),
                about="Uptake capacity capped by the region's emission (second pass).",
                settings=("emissions_t",),
                components=(CAPACITY,),
                parameters=kernels.regional_parameters,
            )
        )
    registry = IndicatorRegistry()
    for row in rows:
        registry = registry.register(row)
    return registry


#: The regulating indicators of the RCEES/Ouyang system (reference gep.md §1.2).
DEFAULT_INDICATORS = _default_registry()


def describe_indicators(registry: IndicatorRegistry = DEFAULT_INDICATORS) -> list[dict[str, Any]]:
    """Return every indicator as JSON-able data (inputs with units, kernel, unit, valuation, legend).

    >>> [entry["code"] for entry in describe_indicators()][:3]
    ['water_conservation', 'soil_retention', 'sand_fixation']
    >>> describe_indicators()[0]["valuation"]["price_keys"]
    ['reservoir_cost']
    """
    return [spec.describe() for spec in registry.specs()]


def describe_roles() -> list[dict[str, str]]:
    """Return every input role with its unit, kind and description, in reading order."""
    return [role.describe() for role in ROLES.values()]
