"""A geometry column that is PostGIS on PostgreSQL and WKB on SQLite.

On PostgreSQL the column is ``geometry(MULTIPOLYGON, 4490)`` (CGCS2000 lon/lat) with a GiST index;
values travel as WKB through ``ST_GeomFromWKB`` / ``ST_AsBinary``, so spatial SQL (``ST_Intersects``,
``&&``) works on it. On SQLite — the embedded default, which has no spatial extension on a fresh
machine — the column is a WKB ``BLOB``, and the table carries bounding-box columns for index search.
The Python side always sees shapely geometries. See ``docs/adr/002-portable-geometry-column.md``.
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

CGCS2000_SRID = 4490


class _PostgisMultiPolygon(UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return f"geometry(MULTIPOLYGON, {CGCS2000_SRID})"


class _FromWkb(FunctionElement[Any]):
    inherit_cache = True
    type = LargeBinary()


class _AsWkb(FunctionElement[Any]):
    inherit_cache = True

    def __init__(self, column: Any, type_: TypeEngine[Any]) -> None:
        super().__init__(column)
        self.type = type_


@compiles(_FromWkb)
def _from_wkb_default(element: _FromWkb, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_FromWkb, "postgresql")
def _from_wkb_postgresql(element: _FromWkb, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ST_GeomFromWKB({compiler.process(element.clauses, **kw)}, {CGCS2000_SRID})"


@compiles(_AsWkb)
def _as_wkb_default(element: _AsWkb, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_AsWkb, "postgresql")
def _as_wkb_postgresql(element: _AsWkb, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ST_AsBinary({compiler.process(element.clauses, **kw)})"


class MultiPolygonGeometry(TypeDecorator[BaseGeometry]):
    """MultiPolygon in EPSG:4490, as shapely geometry in Python."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use PostGIS ``geometry`` on PostgreSQL, ``BLOB`` elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PostgisMultiPolygon())
        return dialect.type_descriptor(LargeBinary())

    def bind_expression(self, bindvalue: Any) -> ColumnElement[Any]:
        """Wrap the bound WKB in ``ST_GeomFromWKB`` on PostgreSQL."""
        return _FromWkb(bindvalue)

    def column_expression(self, column: Any) -> ColumnElement[Any]:
        """Read the column as WKB, typed as this type so results are parsed into shapely."""
        return _AsWkb(column, self)

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> bytes | None:
        """Serialise a shapely geometry to WKB."""
        if value is None:
            return None
        return bytes(shapely.to_wkb(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        """Parse WKB into a shapely geometry."""
        if value is None:
            return None
        return shapely.from_wkb(bytes(value))
