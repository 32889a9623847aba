"""A worker bounds GDAL's block cache (GDAL's default, 5 % of RAM, dominated a 10,000² GEP run's memory)."""

from __future__ import annotations

from api.worker import configure_gdal
from core.settings import Settings


def test_the_worker_sets_gdal_cachemax_from_the_settings(settings: Settings) -> None:
    environ: dict[str, str] = {}
    assert configure_gdal(settings, environ) == "256"
    assert environ == {"GDAL_CACHEMAX": "256"}


def test_an_operator_set_gdal_cachemax_wins(settings: Settings) -> None:
    environ = {"GDAL_CACHEMAX": "1024"}
    assert configure_gdal(settings.model_copy(update={"gdal_cache_mb": 64}), environ) == "1024"
    assert environ == {"GDAL_CACHEMAX": "1024"}
