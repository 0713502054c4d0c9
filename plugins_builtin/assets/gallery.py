"""What the Assets grid shows for each asset: a thumbnail, the image itself or a file-type tile;
the type (MIME family) filter; and paging past the thumbnails the grid hides by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugins_builtin.assets.store import AssetStore, Filters, Page, encode_cursor

#: the thumbnails plugin's contract: ``plugin_data.thumbnails = {"256": id, "1024": id}``
THUMBNAIL_KIND = "image.thumbnail"
GRID_SIZE = "256"
LARGE_SIZE = "1024"
#: an image without a thumbnail is drawn as itself up to this size; a bigger one would make
#: the browser fetch and decode megabytes per tile
SMALL_IMAGE_BYTES = 1_000_000
#: the type filter: MIME families (a prefix of ``mime_type``), as the API's ``mime`` takes it
TYPE_FAMILIES = [
    ("image/", "Images"), ("video/", "Video"), ("audio/", "Audio"), ("text/", "Text"),
    ("application/pdf", "PDF"), ("model/", "3D models"),
    ("application/", "Other files (application/…)"),
]
_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".gguf", ".onnx", ".bin")
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-yaml",
                         "application/yaml", "application/toml", "application/x-ndjson",
                         "application/ld+json"})
_TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".json", ".jsonl", ".yaml", ".yml", ".toml",
                  ".csv", ".tsv", ".log", ".ini", ".cfg", ".xml", ".srt", ".vtt")
#: scanning for the rows a grid page shows, when thumbnails are hidden
SCAN_BATCH = 200
SCAN_LIMIT = 5000


@dataclass(frozen=True)
class Preview:
    """An ``<img>`` (``src`` with its ``width`` and ``height``) or a tile (``family``,
    ``label``); ``note`` says why there is no picture when the thumbnailer failed."""

    family: str
    label: str
    src: str | None = None
    width: int = 0
    height: int = 0
    note: str | None = None


def download_url(asset_id: str) -> str:
    return f"/v1/assets/{asset_id}/download?inline=true"


def thumbnails(asset: dict[str, Any]) -> dict[str, str]:
    """The asset's thumbnails by size, {} when there are none (or the thumbnailer failed)."""
    found = asset["plugin_data"].get("thumbnails")
    if not isinstance(found, dict):
        return {}
    return {size: tid for size, tid in found.items()
            if size != "error" and isinstance(tid, str) and tid}


def thumbnail_error(asset: dict[str, Any]) -> str | None:
    found = asset["plugin_data"].get("thumbnails")
    return str(found["error"]) if isinstance(found, dict) and found.get("error") else None


def family(asset: dict[str, Any]) -> str:
    """image, video, audio, model, document, text or file: what the tile's icon shows."""
    mime = str(asset["mime_type"]).split(";", 1)[0].lower()
    name = str(asset["filename"]).lower()
    if asset["kind"].startswith("model.") or mime.startswith("model/") or \
            name.endswith(_MODEL_SUFFIXES):
        return "model"
    top = mime.split("/", 1)[0]
    if top in ("image", "video", "audio"):
        return top
    if mime == "application/pdf":
        return "document"
    if is_text(asset):
        return "text"
    return "document" if asset["kind"].startswith("doc.") else "file"


def is_text(asset: dict[str, Any]) -> bool:
    """Worth showing as text: text/*, JSON, YAML... or a name that says so."""
    mime = str(asset["mime_type"]).split(";", 1)[0].lower()
    return (mime.startswith("text/") and mime not in ("text/html", "text/javascript")) or \
        mime in _TEXT_TYPES or mime.endswith(("+json", "+xml")) or \
        str(asset["filename"]).lower().endswith(_TEXT_SUFFIXES)


def extension(asset: dict[str, Any]) -> str:
    name = str(asset["filename"])
    return (name.rsplit(".", 1)[-1][:4] if "." in name else "file").upper()


def scaled(asset: dict[str, Any], box: int) -> tuple[int, int]:
    """The size of the asset's thumbnail fitting ``box`` (never enlarged); a square when the
    dimensions are not known yet."""
    width, height = asset["width"], asset["height"]
    if not width or not height:
        return box, box
    factor = min(1.0, box / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def preview(asset: dict[str, Any], size: str = GRID_SIZE) -> Preview:
    """The grid's picture of an asset: its thumbnail of ``size`` px, else a small image as
    itself, else a tile."""
    kind = family(asset)
    label = extension(asset)
    if asset["deleted_at"] or not asset["blob_present"]:
        return Preview(kind, label)
    thumbs = thumbnails(asset)
    if thumbs.get(size):
        width, height = scaled(asset, int(size))
        return Preview(kind, label, download_url(thumbs[size]), width, height)
    error = thumbnail_error(asset)
    if kind == "image" and not error and asset["size"] <= SMALL_IMAGE_BYTES:
        width, height = scaled(asset, int(size))
        return Preview(kind, label, download_url(asset["asset_id"]), width, height)
    return Preview(kind, label, note=f"No thumbnail: {error}" if error else None)


def large_preview(asset: dict[str, Any]) -> Preview | None:
    """The detail page's picture of an image: its 1024 px thumbnail, else the image itself
    (one image, so its size does not matter); None for anything else."""
    if family(asset) != "image" or asset["deleted_at"] or not asset["blob_present"]:
        return None
    thumb = thumbnails(asset).get(LARGE_SIZE)
    if thumb:
        return Preview("image", extension(asset), download_url(thumb),
                       *scaled(asset, int(LARGE_SIZE)))
    return Preview("image", extension(asset), download_url(asset["asset_id"]),
                   asset["width"] or 0, asset["height"] or 0)


def with_previews(assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each asset with its ``preview`` (what ``assets/_thumb.html`` draws)."""
    for asset in assets:
        asset["preview"] = preview(asset)
    return assets


async def list_without_kind(store: AssetStore, filters: Filters, hidden: str, *, limit: int,
                            cursor: str | None) -> Page:
    """A page of ``filters`` skipping assets of kind ``hidden`` (thumbnails, two per image).

    The store is read in batches from ``cursor`` until the page is full; a long run of hidden
    rows ends the page early (after :data:`SCAN_LIMIT` rows) with a "next" cursor where the
    scan stopped, so no request reads the whole table.
    """
    shown: list[dict[str, Any]] = []
    scanned = 0
    while True:
        batch = await store.list(filters, limit=SCAN_BATCH, cursor=cursor)
        for asset in batch.items:
            if asset["kind"] == hidden:
                continue
            if len(shown) == limit:  # one more is shown on the next page
                return Page(shown, encode_cursor("desc", shown[-1]["_seq"]))
            shown.append(asset)
        scanned += len(batch.items)
        if batch.next_cursor is None or scanned >= SCAN_LIMIT:
            return Page(shown, batch.next_cursor)
        cursor = batch.next_cursor
