"""The message catalogs: every message of the templates and web/*.py is translated to Chinese, and the compiled
``.mo`` files are the ``.po`` files as committed (``make messages`` was run)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from core.settings import Settings
from tests.conftest import REPO
from web.pages import page_policy

LOCALE = REPO / "web" / "locale"


def extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "N_",
                    "--no-location", "--omit-header", "-o", str(pot), "."], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    with pot.open("rb") as file:
        return {str(m.id) for m in read_po(file) if m.id}


def test_every_message_has_a_chinese_translation(tmp_path: Path) -> None:
    with (LOCALE / "zh_CN/LC_MESSAGES/messages.po").open("rb") as file:
        catalog = read_po(file)
    translated = {str(m.id) for m in catalog if m.id and m.string}
    missing = sorted(extracted(tmp_path) - translated)
    assert not missing, f"untranslated (run make messages, then translate): {missing}"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_the_compiled_catalogs_match_their_sources(locale: str) -> None:
    with (LOCALE / locale / "LC_MESSAGES/messages.po").open("rb") as file:
        source = read_po(file)
    compiled = read_mo(io.BytesIO((LOCALE / locale / "LC_MESSAGES/messages.mo").read_bytes()))
    pairs = {(str(m.id), str(m.string)) for m in source if m.id and m.string}
    assert pairs == {(str(m.id), str(m.string)) for m in compiled if m.id and m.string}


def test_a_basemap_must_declare_its_datum_and_its_origin_enters_the_page_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GCJ-02 and BD-09"):
        Settings(environment="test", data_dir=tmp_path, basemap_url="https://t0.example.cn/{z}/{x}/{y}.png")
    with pytest.raises(ValueError):
        Settings(environment="test", data_dir=tmp_path, basemap_url="https://t0.example.cn/{z}/{x}/{y}.png",
                 basemap_datum="GCJ-02")  # type: ignore[arg-type]  # fmt: skip
    settings = Settings(environment="test", data_dir=tmp_path, basemap_url="https://t0.example.cn/{z}/{x}/{y}.png",
                        basemap_datum="CGCS2000")  # fmt: skip
    policy = page_policy(settings)
    assert "img-src 'self' data: blob: https://t0.example.cn" in policy
    assert "connect-src 'self' https://t0.example.cn" in policy
    assert "script-src 'self';" in policy
    assert page_policy(Settings(environment="test", data_dir=tmp_path)).count("https://") == 0


def test_the_page_policy_is_api_security_page_policy() -> None:
    from api.security import PAGE_POLICY

    assert page_policy(Settings(environment="test", data_dir=Path("var"))) == PAGE_POLICY.header()
