"""Chinese first, English too: the locale of a request, the compiled Babel catalogs, and locale formatting.

The locale is the remembered switch (cookie :data:`LOCALE_COOKIE`, set by ``POST /lang``) if any, else the
best of ``Accept-Language``, else ``zh_CN``. Message ids are English; ``web/locale/zh_CN`` translates them and
``en`` is the identity. Times are shown in Beijing time with the offset (``+08:00``) whatever the locale; areas
in 亩 first (with 公顷) for Chinese and hectares first (with mu) for English: 1 mu = 10000/15 m² exactly.

>>> negotiate("en-GB,en;q=0.9,zh;q=0.5")
'en'
>>> negotiate("zh-TW,zh;q=0.9")
'zh_CN'
>>> negotiate("fr-FR")
'zh_CN'
>>> format_area(Decimal("1000000"), "zh_CN")
'1,500 亩（100 公顷）'
>>> format_area(Decimal("1000000"), "en")
'100 ha (1,500 mu)'
>>> format_beijing(datetime(2026, 11, 25, 1, 30, tzinfo=UTC), "zh_CN")
'2026-11-25 09:30 (+08:00)'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALES: Final = ("zh_CN", "en")
DEFAULT_LOCALE: Final = "zh_CN"
LOCALE_COOKIE: Final = "shanhai_lang"
#: The ``lang`` attribute of each locale's pages.
HTML_LANG: Final = {"zh_CN": "zh-CN", "en": "en"}
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
LOCALE_DIR: Final = Path(__file__).parent / "locale"
SQUARE_METRES_PER_MU: Final = Decimal(10000) / Decimal(15)


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown (``_(value)`` in a template)."""
    return message


#: Values shown translated although they come from data: roles, statuses, schemes, retirement uses.
DATA_MESSAGES: Final = (
    N_("forestry_bureau"), N_("forest_owner"), N_("ecology_bureau"), N_("verifier"), N_("registry"),
    N_("operator"), N_("enterprise"), N_("bank"), N_("auditor"),
    N_("draft"), N_("submitted"), N_("validated"), N_("registered"), N_("rejected"), N_("verified"), N_("issued"),
    N_("forestry_carbon_ticket"), N_("ccer_afforestation"), N_("ecological_restoration"), N_("ocean_fishery"),
    N_("ipcc_inventory"), N_("plots"), N_("sea_areas"), N_("inventory_units"),
    N_("voluntary"),
    N_("active"), N_("withdrawn"), N_("queued"), N_("running"), N_("succeeded"), N_("failed"),
    N_("accepted"), N_("repaired"), N_("refused"), N_("confirmed"), N_("secondary"),
    N_("Double counting"), N_("Invalid geometry"), N_("Plot outside the project's region"), N_("Invalid input"),
    N_("Unreadable file"), N_("Conflict"), N_("Not found"), N_("Not eligible under the methodology"),
    N_("Internal server error"), N_("Coordinates outside the declared CRS's area of use"),
    N_("Invalid coordinate reference system"), N_("Payload too large"),
)  # fmt: skip


@cache
def translations(locale: str) -> NullTranslations:
    """Return the compiled catalog of ``locale`` (``web/locale/<locale>/LC_MESSAGES/messages.mo``)."""
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def negotiate(accept_language: str | None) -> str:
    """Return the supported locale best matching an ``Accept-Language`` header, else the default."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-quality, position, tag.strip().lower()))
    for _quality, _position, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


def choose_locale(cookie: str | None, accept_language: str | None) -> str:
    """Return the remembered locale when valid, else the negotiated one."""
    return cookie if cookie in LOCALES else negotiate(accept_language)


def format_number(value: int | Decimal, locale: str, *, places: int = 0) -> str:
    """Return ``value`` with the locale's grouping and ``places`` decimals (no float ever)."""
    quantum = Decimal(1).scaleb(-places)
    return format_decimal(Decimal(value).quantize(quantum), format="#,##0" + ("." + "0" * places if places else ""),
                          locale=locale)  # fmt: skip


def format_area(area_m2: Decimal | int, locale: str) -> str:
    """Return an area in 亩 and 公顷 (Chinese) or ha and mu (English)."""
    area = Decimal(area_m2)
    mu = format_number(area / SQUARE_METRES_PER_MU, locale)  # m² ÷ (10000/15 m²/mu) = mu
    hectares = area / Decimal(10_000)  # m² ÷ 10000 m²/ha = ha
    ha = format_number(hectares, locale, places=0 if hectares == hectares.to_integral() else 2)
    return f"{mu} 亩（{ha} 公顷）" if locale == "zh_CN" else f"{ha} ha ({mu} mu)"


def format_plot_area(area_m2: Decimal | float | None, locale: str) -> str:
    """Return a plot's area to 0.01 亩 and 0.0001 公顷 (a 小班 is often a few 亩); ``''`` for none.

    >>> format_plot_area(2000.0, "zh_CN"), format_plot_area(2000.0, "en")
    ('3.00 亩（0.2000 公顷）', '0.2000 ha (3.00 mu)')
    """
    if area_m2 is None:
        return ""
    area = Decimal(str(area_m2))
    mu = format_number(area / SQUARE_METRES_PER_MU, locale, places=2)
    ha = format_number(area / Decimal(10_000), locale, places=4)
    return f"{mu} 亩（{ha} 公顷）" if locale == "zh_CN" else f"{ha} ha ({mu} mu)"


def format_beijing(instant: datetime | str | None, locale: str) -> str:
    """Return an instant in Beijing time to the minute, with its offset; ``''`` for none."""
    if instant is None:
        return ""
    moment = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M (+08:00)")
