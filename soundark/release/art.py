"""The art release: distinct cover images, content-addressed, and which album or recording uses which.

``data/art/<sha256><ext>`` are the images (hard-linked from ``ARCHIVE/art/``; the same image is
there once however many albums use it), ``data/albums.jsonl`` maps albums and
``data/recordings.jsonl`` maps recordings to them (JSON Lines). Only images used by at least
one recording whose rights are redistributable are published, and only images no earlier art
release holds: a re-run publishes a new art release for new images only.
"""

from __future__ import annotations

import shutil

from soundark.catalog import Catalog
from soundark.model import Progress
from soundark.release.bag import BagEntry, DamagedFile, build_bag
from soundark.release.names import safe_ext
from soundark.release.publish import Context, next_name, publish, refuse_if_taken
from soundark.release.readme import art_readme
from soundark.release.records import dumps
from soundark.release.result import ReleaseResult, bag_info

_USED = """
WITH used(sha256, recording_id) AS (
    SELECT e.art_sha256, e.recording_id FROM encoded e WHERE e.art_sha256 IS NOT NULL
    UNION
    SELECT al.art_sha256, t.recording_id FROM album al JOIN track t ON t.album_id = al.id
    WHERE al.art_sha256 IS NOT NULL
)
SELECT a.sha256, a.ext, a.bytes,
       max(r.rights IN ({rights})) AS shareable
FROM art a JOIN used u ON u.sha256 = a.sha256 JOIN recording r ON r.id = u.recording_id
WHERE NOT EXISTS (SELECT 1 FROM release_file rf JOIN release rl ON rl.id = rf.release_id
                  WHERE rl.phase = 'art' AND rf.sha256 = a.sha256)
GROUP BY a.sha256 ORDER BY a.sha256
"""
_ALBUMS = """SELECT key, title, artist, date, label, upc, mbid, art_sha256 FROM album
WHERE art_sha256 IN ({q}) ORDER BY key"""
_RECORDINGS = """SELECT r.key, r.isrc, r.mbid, r.title, r.artist, e.art_sha256 FROM encoded e
JOIN recording r ON r.id = e.recording_id JOIN plan p ON p.recording_id = e.recording_id AND p.tier = e.tier
WHERE e.art_sha256 IN ({q}) ORDER BY r.key"""


def _mapping(catalog: Catalog, sql: str, images: dict[str, str]) -> bytes:
    """JSON Lines of every album/recording using one of ``images``, sorted by key."""
    objs: list[dict] = []
    shas = sorted(images)
    for i in range(0, len(shas), 500):
        chunk = shas[i:i + 500]
        for row in catalog.execute(sql.format(q=", ".join("?" for _ in chunk)), tuple(chunk)):
            obj = dict(row)
            obj["image"] = images[obj["art_sha256"]]
            objs.append(obj)
    objs.sort(key=lambda o: o["key"])
    return "".join(dumps(o) + "\n" for o in objs).encode("utf-8")


def publish_art(catalog: Catalog, ctx: Context, result: ReleaseResult, progress: Progress) -> None:
    """Publish one art release with every shareable image not yet released (nothing if none)."""
    rights = tuple(ctx.settings.redistributable) or ("",)
    rows = catalog.execute(_USED.format(rights=", ".join("?" for _ in rights)), rights).fetchall()
    shareable = []
    for row in rows:
        if not row["shareable"]:
            result.hold("image used only by recordings that are not redistributable")
        elif not ctx.paths.art_path(row["sha256"], row["ext"]).is_file():
            result.hold("image missing from the art store")
            result.error(ctx.paths.art_path(row["sha256"], row["ext"]), "missing")
        else:
            shareable.append(row)
    while shareable:
        name = next_name(catalog, ctx, "art")
        refuse_if_taken(catalog, ctx, name)
        images = {r["sha256"]: f"art/{r['sha256']}{safe_ext(r['ext'])}" for r in shareable}
        entries = [BagEntry(f"data/{images[r['sha256']]}", r["bytes"], ctx.paths.art_path(r["sha256"], r["ext"]),
                            r["sha256"], key=r["sha256"]) for r in shareable]
        for rel, sql in (("data/albums.jsonl", _ALBUMS), ("data/recordings.jsonl", _RECORDINGS)):
            data = _mapping(catalog, sql, images)
            entries.append(BagEntry(rel, len(data), content=data))
        readme = art_readme(name, ctx.date, len(shareable)).encode("utf-8")
        entries.append(BagEntry("data/README.txt", len(readme), content=readme))
        try:
            built = build_bag(ctx.staging / name, entries, bag_info(ctx, name, "Cover art of a music "
                              "preservation archive; see data/README.txt"), one_pass=not ctx.hybrid,
                              progress=progress)
        except DamagedFile as e:
            result.hold("image damaged (SHA-256 mismatch)")
            result.error(e.subject, e.reason)
            shareable = [r for r in shareable if r["sha256"] != e.key]
            shutil.rmtree(ctx.staging / name, ignore_errors=True)
            continue
        files = [(None, rel, sha, size) for rel, sha, size in built.payload]
        result.published.append(publish(catalog, ctx, built, "art", files))
        return
