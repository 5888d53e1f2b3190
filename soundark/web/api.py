"""The JSON API (OpenAPI description at /openapi.json, docs at /docs).

Handlers return ``JSONResponse`` directly (no response-model validation on the hot
path); the pydantic models below only describe the shapes in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from soundark.web.queries import MAX_PAGE, MAX_PAGE_SIZE, MAX_QUERY_CHARS, ArchiveReader

router = APIRouter(prefix="/api", tags=["api"])


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class SearchResult(BaseModel):
    key: str
    title: str
    artist: str
    album: str
    date: str | None = None
    duration_ms: int | None = None
    isrc: str | None = None
    listens: int | None = None
    rights: str
    tier: str | None = None
    release: str | None = None
    magnet: str | None = None
    art_url: str | None = None
    audio_url: str | None = None


class SearchPageModel(BaseModel):
    query: str
    page: int
    size: int
    total: int
    total_is_lower_bound: bool
    has_next: bool
    results: list[SearchResult]


class RecordingModel(BaseModel):
    """A recording with its artists, tracks, sources, plan, stored files and releases."""

    model_config = ConfigDict(extra="allow")
    key: str
    title: str
    artist: str
    isrc: str | None = None
    artists: list[dict[str, Any]]
    tracks: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    plan: dict[str, Any] | None = None
    encoded: list[dict[str, Any]]
    releases: list[dict[str, Any]]
    art: dict[str, Any] | None = None
    play: dict[str, Any] | None = None


class ReleasesModel(BaseModel):
    releases: list[dict[str, Any]]
    torrents_json: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Unusable input (query too long, bad ISRC...)"},
    404: {"model": ErrorBody, "description": "Not found"},
    422: {"model": ErrorBody, "description": "A parameter has the wrong type or range"},
}


def _reader(request: Request) -> ArchiveReader:
    return request.app.state.reader


@router.get("/search", response_model=None, responses={200: {"model": SearchPageModel}, **_ERRORS},
            summary="Search recordings by title, artists, album or ISRC")
async def api_search(
    request: Request,
    q: str = Query("", description=f'Words; "a phrase", prefix*, -excluded, or an ISRC. '
                                   f"At most {MAX_QUERY_CHARS} characters."),
    page: int = Query(1, ge=1, le=MAX_PAGE, description="Page number, from 1."),
    size: int = Query(20, ge=1, le=MAX_PAGE_SIZE, description="Results per page."),
) -> Response:
    # Searched on the event loop, not in a thread: a search is ~1 ms of mostly SQLite, and
    # handing it to a thread costs more (GIL hand-offs with the loop) than it saves.
    # ArchiveReader bounds every search's time, so one query cannot hold the loop for long.
    found = _reader(request).search(q, page, size)
    return Response(found.json_bytes, media_type="application/json")


@router.get("/recordings/{key}", response_model=None, responses={200: {"model": RecordingModel}, **_ERRORS},
            summary="One recording by its key (ISRC, mb+MBID hex, or sa+hex)")
def api_recording(key: str, request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).recording(key))


@router.get("/isrc/{isrc}", response_model=None, responses={200: {"model": RecordingModel}, **_ERRORS},
            summary="The recording with this ISRC (ISO 3901; dashes and case ignored)")
def api_isrc(isrc: str, request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).recording_by_isrc(isrc))


@router.get("/releases", response_model=None, responses={200: {"model": ReleasesModel}},
            summary="Every release (torrent) with phase, size, files, share of listens and magnet link")
def api_releases(request: Request) -> JSONResponse:
    reader = _reader(request)
    listed = reader.release_list.is_file()
    return JSONResponse({"releases": reader.releases(),
                         "torrents_json": "/releases/torrents.json" if listed else None})


@router.get("/stats", response_model=None, summary="Counts of the catalog, plan, store and releases")
def api_stats(request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).stats())


@router.get("/coverage", response_model=None,
            summary="The plan's tier table and coverage curve (share of listens vs bytes and recordings)")
def api_coverage(request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).coverage())


@router.get("/home", response_model=None, summary="The home page's figures: headline (recordings preserved, "
            "share of listens, bytes), most listened preserved recordings, recent releases")
def api_home(request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).home())


@router.get("/albums", response_model=None, responses=_ERRORS,
            summary="Albums by title, with cover URL and how many of their tracks are preserved")
def api_albums(request: Request, page: int = Query(1, ge=1, le=10_000), size: int = Query(60, ge=1, le=MAX_PAGE_SIZE)
               ) -> JSONResponse:
    return JSONResponse(_reader(request).albums(page, size))


@router.get("/albums/{key}", response_model=None, responses=_ERRORS,
            summary="One album: facts, cover, tracks in order (with audio URLs), the releases holding them")
def api_album(key: str, request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).album(key))


@router.get("/artists", response_model=None, responses=_ERRORS,
            summary="Credited artists by name, with their number of recordings")
def api_artists(request: Request, page: int = Query(1, ge=1, le=10_000),
                size: int = Query(100, ge=1, le=MAX_PAGE_SIZE)) -> JSONResponse:
    return JSONResponse(_reader(request).artists(page, size))


@router.get("/artists/{key}", response_model=None, responses=_ERRORS,
            summary="One artist: their albums and most listened recordings")
def api_artist(key: str, request: Request) -> JSONResponse:
    return JSONResponse(_reader(request).artist(key))
