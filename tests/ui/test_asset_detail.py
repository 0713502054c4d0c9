"""The asset page over HTTP: a preview for each type (image, audio, video, text read through
the storage provider, PDF), dimensions and duration, extracted metadata as a table,
derived assets with their previews, and linked entities with their roles.

The thumbnail and metadata plugins are off; tests write what they would.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from tests.media import png_bytes
from tests.ui.asset_pages import (
    MP3,
    MP4,
    PDF,
    QUIET,
    create_entity,
    download,
    set_thumbnails,
    upload,
)
from tests.ui.browsing import SignedIn, page, tags

TEXT_PREVIEW_BYTES = 64 * 1024  # plugins_builtin.assets.ui.TEXT_PREVIEW_BYTES


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home, env=QUIET)


@pytest.fixture
def store(app: Starlette, client: httpx.AsyncClient) -> Any:
    return app.state.kernel.services["assets.store"]


def section(html: str, element_id: str, end: str = "</section>") -> str:
    return html.split(f'id="{element_id}"', 1)[1].split(end, 1)[0]


async def detail(ui: SignedIn, asset_id: str) -> str:
    return await page(ui, f"/ui/assets/{asset_id}")


# -- previews ----------------------------------------------------------------------------

async def test_an_image_shows_its_1024_thumbnail_linking_to_the_original(ui, client, store):
    photo = await upload(client, "photo.png", png_bytes(1_200_000))
    small = await upload(client, "small.png", kind="image.thumbnail",
                         derived_from_asset_id=photo)
    large = await upload(client, "large.png", kind="image.thumbnail",
                         derived_from_asset_id=photo)
    await set_thumbnails(client, photo, {"256": small, "1024": large})
    await store.set_extracted(photo, {}, width=3000, height=4000)
    preview = section(await detail(ui, photo), "asset-preview")
    (img,) = tags(preview, "img")
    assert img.attrs["src"] == download(large)
    assert (img.attrs["width"], img.attrs["height"]) == ("768", "1024")
    assert img.attrs["alt"] == "photo.png"
    assert tags(preview, "a", href=download(photo))  # the picture opens the original
    assert "Open the original" in preview and "3000 × 4000 px" in preview

    # without thumbnails (not made yet, or they failed): the image itself, and why
    plain = await upload(client, "plain.png")
    await set_thumbnails(client, plain, {"error": "decompression bomb"})
    preview = section(await detail(ui, plain), "asset-preview")
    assert tags(preview, "img")[0].attrs["src"] == download(plain)
    assert "No thumbnails: decompression bomb" in preview


async def test_audio_and_video_play_in_the_page(ui, client, store):
    song = await upload(client, "song.mp3", MP3)
    clip = await upload(client, "clip.mp4", MP4)
    await store.set_extracted(song, {}, duration_seconds=125.5)
    await store.set_extracted(clip, {}, width=1920, height=1080, duration_seconds=3725)
    html = await detail(ui, song)
    (audio,) = tags(section(html, "asset-preview"), "audio")
    assert audio.attrs == {"class": "asset-player", "controls": "", "preload": "metadata",
                           "src": download(song)}
    assert re.search(r'id="asset-duration">2:05\.5<', html)
    html = await detail(ui, clip)
    (video,) = tags(section(html, "asset-preview"), "video")
    assert (video.attrs["preload"], video.attrs["src"]) == ("metadata", download(clip))
    assert "controls" in video.attrs
    assert re.search(r'id="asset-duration">1:02:05<', html)
    assert re.search(r'id="asset-dimensions">1920 × 1080 px<', html)


async def test_text_is_shown_escaped_from_its_first_64_kib(ui, client):
    notes = await upload(client, "notes.md", b"# Title\n<script>alert(1)</script> & more\n")
    preview = section(await detail(ui, notes), "asset-preview")
    assert tags(preview, "pre", id="text-preview")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in preview
    assert "<script>alert" not in preview and "download the file" not in preview
    data = await upload(client, "data.json", b'{"a": [1, 2]}')
    preview = section(await detail(ui, data), "asset-preview")
    assert tags(preview, "pre", id="text-preview") and '{"a": [1, 2]}' in unescape(preview)

    # a big file: its beginning, never a character cut in two at the end
    body = "a" + "é" * (TEXT_PREVIEW_BYTES // 2) + "z" * 10_000  # byte 65,536 halves an é
    big = await upload(client, "big.txt", body.encode())
    preview = section(await detail(ui, big), "asset-preview")
    shown = unescape(preview.split('id="text-preview" tabindex="0">', 1)[1].split("</pre>")[0])
    assert shown == "a" + "é" * (TEXT_PREVIEW_BYTES // 2 - 1)
    assert "The first 64.0 KiB of 75.5 kB; download the file for the rest." in preview
    # empty, and text that is not text
    empty = await upload(client, "empty.txt", b"")
    assert "The file is empty." in section(await detail(ui, empty), "asset-preview")
    odd = await upload(client, "odd.txt", b"text\x00with a NUL")
    preview = section(await detail(ui, odd), "asset-preview")
    assert "binary data" in preview and not tags(preview, "pre")


async def test_text_that_cannot_be_read_is_explained(ui, client, settings):
    notes = await upload(client, "notes.txt", b"my notes\n")
    blob = settings.paths.assets_dir / notes[:2] / notes[2:4] / notes
    blob.unlink()  # removed behind Core's back
    html = await detail(ui, notes)
    assert re.search(r'id="text-problem">The text cannot be read now: [^<]*missing', html)


async def test_pdf_other_files_and_deleted_assets(ui, client):
    paper = await upload(client, "paper.pdf", PDF)
    preview = section(await detail(ui, paper), "asset-preview")
    assert tags(preview, "a", href=download(paper)) and "Open the PDF" in preview
    lora = await upload(client, "style.safetensors", b"\x08" + bytes(40))
    assert "No preview for application/octet-stream." in \
        section(await detail(ui, lora), "asset-preview")
    face = await upload(client, "face.png")
    assert (await client.delete(f"/v1/assets/{face}")).status_code == 204
    preview = section(await detail(ui, face), "asset-preview")
    assert "No preview: the asset is deleted." in preview and not tags(preview, "img")


# -- extracted metadata ------------------------------------------------------------------

WORKFLOW = {"nodes": [{"id": i, "type": "KSampler", "widgets_values": [i, "euler", 20]}
                      for i in range(40)]}


async def test_extracted_metadata_is_a_readable_table(ui, client, store):
    photo = await upload(client, "photo.png")
    long_comment = "a long comment " * 30
    await store.set_extracted(photo, {
        "exiftool": {"SourceFile": "/tmp/staged-123", "System:FileSize": 2048,
                     "System:Directory": "/tmp", "PNG:ImageWidth": 640, "PNG:ImageHeight": 480,
                     "PNG:Comment": long_comment, "XMP-dc:Creator": "<b>Ada</b>",
                     "ExifTool:ExifToolVersion": 12.57, "Orphan": True},
        "generation": {"source": "png:parameters",
                       "parameters": "a castle\nNegative prompt: blurry\nSteps: 20, Sampler: "
                                     "Euler a, CFG scale: 7",
                       "parsed": {"prompt": "a castle, <lora:style:0.8>",
                                  "negative_prompt": "blurry",
                                  "settings": {"Steps": "20", "Sampler": "Euler a",
                                               "CFG scale": "7"}},
                       "workflow": WORKFLOW},
    }, width=640, height=480)
    html = await detail(ui, photo)
    meta = section(html, "extracted-metadata", '<details class="meta-group"><summary>Plugin')
    # generation parameters first, the prompts as text
    generation = section(meta, "generation")
    assert '<span class="tag">png:parameters</span>' in generation
    prompts = re.findall(r'<h5 class="prompt-label">([^<]+)</h5>\s*<pre class="prompt">([^<]*)'
                         r'</pre>', generation)
    assert [(label, unescape(text)) for label, text in prompts] == [
        ("Prompt", "a castle, <lora:style:0.8>"), ("Negative prompt", "blurry")]
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td>([^<]*)</td>', generation))
    assert {k: rows[k] for k in ("Steps", "Sampler", "CFG scale")} == \
        {"Steps": "20", "Sampler": "Euler a", "CFG scale": "7"}
    # the workflow graph is folded, its size said
    workflow = generation.split('<th scope="row">workflow</th>', 1)[1].split("</tr>", 1)[0]
    assert '<details class="json-value"><summary>JSON object, 1 key,' in workflow
    folded = unescape(workflow.split("<code>", 1)[1].split("</code>", 1)[0])
    assert json.loads(folded) == WORKFLOW

    # ExifTool: one table per group, the picture's groups open, the file system's folded
    groups = re.findall(r'<details class="meta-group" data-group="([^"]+)"( open)?>', meta)
    assert groups == [("PNG", " open"), ("XMP-dc", " open"), ("Other", " open"),
                      ("System", ""), ("ExifTool", "")]
    png = meta.split('data-group="PNG"', 1)[1].split("</details>\n</details>", 1)[0]
    assert re.search(r'<th scope="row">ImageWidth</th><td>640</td>', png)
    comment = png.split('<th scope="row">Comment</th>', 1)[1].split("</tr>", 1)[0]
    assert '<span class="short">' + ("a long comment " * 11)[:160].rstrip() + "…</span>" in \
        comment
    assert "Show all" in comment and unescape(comment.split('<pre class="wrap">')[1]
                                              .split("</pre>")[0]) == long_comment
    assert "&lt;b&gt;Ada&lt;/b&gt;" in meta and "<b>Ada" not in meta
    assert '<th scope="row">Orphan</th><td>true</td>' in meta
    assert "staged-123" not in meta  # ExifTool's own path of the file it read
    assert re.search(r'id="asset-dimensions">640 × 480 px<', html)


async def test_safetensors_metadata_and_failures(ui, client, store):
    lora = await upload(client, "style.safetensors", b"\x08" + bytes(40))
    await store.set_extracted(lora, {"generation": {
        "source": "safetensors", "tensor_count": 264,
        "metadata": {"ss_network_dim": "32", "ss_tag_frequency": {"1_ada": {
            f"tag{i}": i for i in range(200)}}}}})
    generation = section(await detail(ui, lora), "generation")
    assert '<span class="tag">safetensors</span>' in generation
    assert '<th scope="row">ss_network_dim</th><td>32</td>' in generation
    assert '<th scope="row">tensor_count</th><td>264</td>' in generation
    tags_row = generation.split('<th scope="row">ss_tag_frequency</th>', 1)[1]
    assert tags_row.startswith('<td><details class="json-value">')

    notes = await upload(client, "notes.txt", b"notes\n")
    await store.set_extracted(notes, {"error": "exiftool timed out"})
    html = await detail(ui, notes)
    assert re.search(r'id="extraction-error">Extraction failed: exiftool timed out<', html)
    fresh = await upload(client, "fresh.txt", b"fresh\n")
    meta = section(await detail(ui, fresh), "extracted-metadata", "</div>")
    assert "None (not extracted yet, or the file carries none)." in meta


# -- derived assets and links ------------------------------------------------------------

async def test_derived_assets_show_their_previews_and_point_back(ui, client):
    photo = await upload(client, "photo.png")
    small = await upload(client, "photo-256.png", kind="image.thumbnail",
                         derived_from_asset_id=photo)
    large = await upload(client, "photo-1024.png", kind="image.thumbnail",
                         derived_from_asset_id=photo)
    await set_thumbnails(client, photo, {"256": small, "1024": large})
    html = await detail(ui, photo)
    derived = section(html, "derived-assets", "</ul>")
    items = re.findall(r'data-asset-id="([0-9a-f]{64})">.*?<a href="/ui/assets/\1">([^<]+)</a>',
                       derived)
    assert items == [(large, "1024 px thumbnail"), (small, "256 px thumbnail")]
    assert [t.attrs["src"] for t in tags(derived, "img")] == [download(large), download(small)]
    assert all(t.attrs["loading"] == "lazy" for t in tags(derived, "img"))

    html = await detail(ui, small)
    banner = section(html, "derived-banner", "</p>")
    assert "A thumbnail of" in banner and f'href="/ui/assets/{photo}">photo.png<' in banner
    assert "Not linked to any entity" in html


async def test_linked_entities_show_their_roles(ui, client):
    ada = await create_entity(client, "Ada <Lovelace>")
    grace = await create_entity(client, "Grace")
    gone = await create_entity(client, "Gone")
    face = await upload(client, "face.png", entity_id=[ada, grace, gone], role="portrait")
    # a link's role can change; a link without one keeps it
    r = await client.post(f"/v1/entities/{grace}/assets/{face}", json={"role": "reference"})
    assert r.status_code in (200, 201), r.text
    r = await client.post(f"/v1/entities/{ada}/assets/{face}", json={})
    assert r.status_code in (200, 201), r.text
    assert (await client.delete(f"/v1/entities/{gone}")).status_code == 204
    linked = section(await detail(ui, face), "linked-entities", "</ul>")
    shown = re.findall(r'<a href="/ui/entities/([0-9a-f]{64})\?tab=attachments">([^<]+)</a>'
                       r'(?: <span class="tag link-role">([^<]+)</span>)?', linked)
    assert shown == [(ada, "Ada &lt;Lovelace&gt;", "portrait"), (grace, "Grace", "reference")]
