"""File downloads: the media types the API serves and one way to send a body as an attachment."""

from __future__ import annotations

from fastapi import Response

CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GPKG = "application/geopackage+sqlite3"


def attachment(content: bytes | str, media_type: str, filename: str) -> Response:
    """Return ``content`` as a download named ``filename`` (``Content-Disposition: attachment``)."""
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
