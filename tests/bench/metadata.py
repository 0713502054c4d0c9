"""Issue 10 (metadata) at scale and in bulk.

- :func:`scale_scenarios`: what the ``scale`` phase adds at 1,000,000 entities (100,000 with
  ``--quick``): defined-field range filters of several selectivities (~10%, ~0.1%, a handful,
  and a sweep from 1,000 to 25,000 matches across the store's plan switches) sorted by
  creation, by update time and by name (p50 <= 10 ms), an equality filter, external id
  lookups (<= 10 ms), ``include_total`` without a filter (the kept count:
  ``first_page_with_total``, judged at 10 ms), a broad search sorted by ``updated_at`` and
  by ``display_name`` (<= 50 ms).  Each page is checked: its size, its order, every item
  inside the range.
- :func:`bench_metadata`, the ``metadata`` phase: ``POST /v1/entities/bulk-upsert`` of 10,000
  realistic items (name, aliases, tags, fields incl. the defined ``born`` and ``height``, an
  external id) into a library of 100,000 (20,000 quick): new (<= 2 s), then the same batch
  again, all unchanged (<= 1 s), then with 10% of the items changed (reported); beside it,
  the floors measured in the same run (the seeder writing the same 10,000 entities straight
  into SQLite, the same body posted to a bare Starlette app).  Then an entity with 1,000
  relationships: its first page at the default limit 50 (p50 <= 10 ms), and limit=500,
  ``names=false``, a page deep in the list and ``GET /v1/entities/{id}`` (reported).
  Checked: the seeder writes what the API writes with the fields defined through the API.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import msgspec

from kernel.home import DB_FILENAME
from plugins_builtin.entities.entity_rows import name_key
from plugins_builtin.entities.field_filters import choose_plan
from tests.bench import seed as seeding
from tests.bench.load import client_for, get_json, process_cpu_s
from tests.bench.server import BareServer, BenchError, Server, cli

if TYPE_CHECKING:
    from tests.bench.document import Bench

BULK_ITEMS = 10_000
#: issue 10's targets, seconds
BULK_NEW_S = 2.0
BULK_UNCHANGED_S = 1.0
RELATIONSHIPS = 1_000
#: what generated data never has: folding edge cases in names, an int for a float field,
#: undefined keys beside defined ones, odd external ids
FIDELITY_PROBES = [
    {"display_name": "Ｅmile Ǆuro ﬁnn", "aliases": ["ÉMILE"],
     "fields": {"born": "1999-02-28", "height": 180, "nested": {"born": "x"}},
     "external_ids": {"stash": "Ünï 1", "imdb": "nm0000001"}},
    {"display_name": "straße Strasse", "tags": ["Ωmega"],
     "fields": {"born": "2000-01-01", "height": 165.25, "undefined": [1, 2]},
     "external_ids": {"tpdb.v2": "a:b:c"}},
]
REL_TYPES = ("friend_of", "colleague_of", "member_of", "parent_of", "child_of", "rival_of",
             "mentor_of", "portrays")


# -- scale-phase scenarios -------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    params: dict[str, Any]
    #: p50 target in ms; None: informational
    target_ms: float | None
    expect: int
    #: a page's items -> what is wrong with them (None: nothing)
    valid: Callable[[list[dict[str, Any]]], str | None] | None = None
    info: dict[str, Any] | None = None


def ordered(sort_by: str, order: str) -> Callable[[list[dict[str, Any]]], str | None]:
    """A check that a page is in the order it asked for (ties by entity_id)."""
    def key(item: dict[str, Any]) -> tuple[Any, str]:
        value = name_key(item["display_name"]) if sort_by == "display_name" else item[sort_by]
        return value, item["entity_id"]

    def check(items: list[dict[str, Any]]) -> str | None:
        keys = [key(i) for i in items]
        want = sorted(keys, reverse=order == "desc")
        return None if keys == want else f"not in {sort_by} {order} order"
    return check


def in_range(field: str, lo: Any, hi: Any, then: Callable[..., str | None] | None = None
             ) -> Callable[[list[dict[str, Any]]], str | None]:
    """Every item has ``lo <= fields[field] < hi`` (``hi`` None: ``== lo``), then ``then``."""
    def check(items: list[dict[str, Any]]) -> str | None:
        for item in items:
            value = item["fields"].get(field)
            if value is None or not (value == lo if hi is None else lo <= value < hi):
                return f"{item['entity_id']}: {field} = {value!r} outside [{lo}, {hi})"
        return then(items) if then else None
    return check


def _bound(conn: sqlite3.Connection, key: str, start: Any, k: int) -> Any:
    """The value before which about ``k`` indexed values of ``key`` at or after ``start``
    lie: a range of a chosen selectivity."""
    row = conn.execute("SELECT value FROM entity_field_values WHERE field_key = ?"
                       " AND value >= ? ORDER BY value LIMIT 1 OFFSET ?",
                       (key, start, max(0, k))).fetchone()
    if row is None:
        raise BenchError(f"fewer than {k} values of {key} from {start}")
    return row[0]


def _count(conn: sqlite3.Connection, key: str, lo: Any, hi: Any | None) -> int:
    sql = ("SELECT count(*) FROM entity_field_values WHERE field_key = ? AND "
           + ("value = ?" if hi is None else "value >= ? AND value < ?"))
    return int(conn.execute(sql, (key, lo) if hi is None else (key, lo, hi)).fetchone()[0])


def scale_scenarios(db: Path, n: int) -> list[Scenario]:
    """Issue 10's list scenarios on the seeded database (ranges chosen by their counts)."""
    out: list[Scenario] = []
    with sqlite3.connect(db) as conn:
        newest = conn.execute("SELECT max(seq) FROM entities").fetchone()[0] or 0
        sorts = (("created_at", "desc"), ("updated_at", "desc"), ("display_name", "asc"))
        # (name, start, matches wanted): the selectivities of the issue, then a sweep
        # across the store's plan switches (field_filters.choose_plan), scaled to n
        ranges = [("broad_10pct", "1960-01-01", n // 10),
                  ("narrow_0.1pct", "1985-03-01", n // 1000),
                  ("tiny_20", "1991-07-01", 20)]
        ranges += [(f"sweep_{k}", f"19{20 + i * 3}-01-01", k * n // 1_000_000)
                   for i, k in enumerate((1_000, 2_000, 4_000, 6_000, 8_000, 10_000,
                                          15_000, 25_000))]
        for label, start, k in ranges:
            hi = _bound(conn, "born", start, k)
            matches = _count(conn, "born", start, hi)
            for sort_by, order in sorts:
                params = {"field.born.gte": start, "field.born.lt": hi}
                if sort_by != "created_at":
                    params |= {"sort_by": sort_by, "sort_order": order}
                out.append(Scenario(
                    f"field_born_{label}_by_{sort_by}", params, 10.0, min(50, matches),
                    in_range("born", start, hi, ordered(sort_by, order)),
                    {"matches": matches, "share": round(matches / n, 5),
                     "plan": choose_plan(sort_by, matches, newest)}))
        day = _bound(conn, "born", "1988-06-01", 0)
        matches = _count(conn, "born", day, None)
        out.append(Scenario("field_born_equals_one_day", {"field.born": day}, 10.0,
                            min(50, matches), in_range("born", day, None),
                            {"matches": matches}))
        hi = _bound(conn, "height", 180.0, n // 10)
        matches = _count(conn, "height", 180.0, hi)
        out.append(Scenario("field_height_broad_10pct_by_created_at",
                            {"field.height.gte": 180.0, "field.height.lt": hi}, 10.0,
                            min(50, matches), in_range("height", 180.0, hi,
                                                       ordered("created_at", "desc")),
                            {"matches": matches, "share": round(matches / n, 5)}))
        # combined with a tag and with a search: informational
        lo, hi = "1960-01-01", _bound(conn, "born", "1960-01-01", n // 10)
        out.append(Scenario("field_born_broad_and_tag_common",
                            {"field.born.gte": lo, "field.born.lt": hi,
                             "tag": seeding.TAG_COMMON}, None, 50, in_range("born", lo, hi)))
        out.append(Scenario("field_born_broad_and_q_moderate",
                            {"field.born.gte": lo, "field.born.lt": hi,
                             "q": seeding.PROBE_MODERATE}, None, -1, in_range("born", lo, hi)))
        for ns in ("stash", "tpdb"):
            eid, value = conn.execute(
                "SELECT entity_id, value FROM entity_external_ids WHERE namespace = ?"
                " LIMIT 1 OFFSET ?", (ns, n // 7)).fetchone()

            def same(items: list[dict[str, Any]], eid: str = eid) -> str | None:
                return None if items[0]["entity_id"] == eid else "another entity"
            out.append(Scenario(f"external_id_{ns}", {"external_id": f"{ns}:{value}"}, 10.0,
                                1, same))
    out += [
        Scenario("q_prefix_by_updated_at", {"q": "ma", "sort_by": "updated_at"}, 50.0, 50,
                 ordered("updated_at", "desc")),
        Scenario("q_prefix_by_display_name",
                 {"q": "ma", "sort_by": "display_name", "sort_order": "asc"}, 50.0, 50,
                 ordered("display_name", "asc")),
        Scenario("sort_display_name_asc", {"sort_by": "display_name", "sort_order": "asc"},
                 10.0, 50, ordered("display_name", "asc")),
    ]
    return out


# -- the metadata phase ----------------------------------------------------------------
def bulk_items(count: int, seed: int) -> list[dict[str, Any]]:
    """Upsert items: the generator's entities, each with an external id to be matched by."""
    keys = ("display_name", "aliases", "tags", "fields")
    return [{**{k: e[k] for k in keys},
             "external_ids": {"stash": f"s{seed}-{i}", **e["external_ids"]}}
            for i, e in enumerate(seeding.generate(count, seed=seed))]


def _post_timed(client: httpx.Client, server: Server, path: str, body: bytes
                ) -> tuple[float, float | None, Any]:
    """One POST: wall seconds, server CPU seconds, the decoded answer."""
    cpu0 = process_cpu_s(server.pid)
    t = time.perf_counter()
    response = client.post(path, content=body)
    wall = time.perf_counter() - t
    cpu1 = process_cpu_s(server.pid)
    if response.status_code != 200:
        raise BenchError(f"POST {path} -> {response.status_code}: {response.text[:500]}")
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return wall, cpu, response.json()


def _statuses(answer: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in answer["results"]:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def bulk_rounds(client: httpx.Client, server: Server, bench: Bench,
                progress: Callable[[str], None], rounds: int, seed: int,
                bare: httpx.Client | None = None) -> dict[str, Any]:
    """``rounds`` times: a new batch of :data:`BULK_ITEMS`, the same again, then with 10%
    of its items changed; the medians, every round, and the bare upload of each body."""
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        items = bulk_items(BULK_ITEMS, seed + r)
        body = msgspec.json.encode({"items": items, "mode": "merge"})
        changed = [dict(it) for it in items]
        for it in changed[::10]:
            it["tags"] = [*it["tags"], "bulk-touched"]
        changed_body = msgspec.json.encode({"items": changed, "mode": "merge"})
        run: dict[str, Any] = {"body_bytes": len(body)}
        for kind, payload, want in (("new", body, {"created": BULK_ITEMS}),
                                    ("unchanged", body, {"unchanged": BULK_ITEMS}),
                                    ("changed_10pct", changed_body,
                                     {"updated": BULK_ITEMS // 10,
                                      "unchanged": BULK_ITEMS - BULK_ITEMS // 10})):
            quiet = bench.quiet()
            wall, cpu, answer = _post_timed(client, server, "/v1/entities/bulk-upsert",
                                            payload)
            got = _statuses(answer)
            bench.check(f"bulk upsert round {r + 1} {kind}: statuses {got}", got == want,
                        {"want": want, "errors": [x for x in answer["results"]
                                                  if x["status"] == "error"][:3]})
            run[kind] = {"seconds": round(wall, 3),
                         "server_cpu_s": None if cpu is None else round(cpu, 3),
                         "items_per_s": round(BULK_ITEMS / wall, 1),
                         "busy_cores_before": quiet.get("busy_cores")}
            progress(f"  bulk upsert round {r + 1}/{rounds} {kind}: {wall:.3f} s "
                     f"(server CPU {cpu and round(cpu, 3)} s)")
        if bare is not None:
            bench.quiet()
            t = time.perf_counter()
            bare.post("/upload", content=body).raise_for_status()
            run["bare_upload_same_body_s"] = round(time.perf_counter() - t, 4)
        runs.append(run)
    out: dict[str, Any] = {"items": BULK_ITEMS, "rounds": runs}
    for kind in ("new", "unchanged", "changed_10pct"):
        out[f"{kind}_median_s"] = round(statistics.median(r[kind]["seconds"] for r in runs), 3)
        out[f"{kind}_rounds_s"] = [r[kind]["seconds"] for r in runs]
    if bare is not None:
        out["bare_upload_median_s"] = round(
            statistics.median(r["bare_upload_same_body_s"] for r in runs), 4)
    return out


def _sqlite_floor(root: Path, base: int, seed: int) -> dict[str, Any]:
    """The seeder writing :data:`BULK_ITEMS` entities (and their index rows) into a copy of
    a library of ``base`` entities: the SQL alone, no HTTP, no checks, no savepoints."""
    home = root / "metadata-floor"
    cli(home, "migrate")
    db = home / "db" / DB_FILENAME
    seeding.seed(db, base, seed=seed, rebuild_indexes=base >= 50_000)
    res = seeding.seed(db, BULK_ITEMS, seed=seed + 1, rebuild_indexes=False)
    return {"seconds": round(res.insert_seconds + res.generate_seconds, 3),
            "insert_seconds": round(res.insert_seconds, 3),
            "generate_seconds": round(res.generate_seconds, 3),
            "note": f"tests.bench.seed writing {BULK_ITEMS} entities into {base} (batches of "
                    f"50,000 rows per statement kind, one transaction, synchronous=OFF)"}


def _relationships(client: httpx.Client, server: Server, bench: Bench,
                   progress: Callable[[str], None], ids: list[str], requests: int
                   ) -> dict[str, Any]:
    """An entity with :data:`RELATIONSHIPS` relationships (both directions, several types)
    among others' relationships; its pages listed."""
    out: dict[str, Any] = {}
    rng = random.Random(10)
    hub, others = ids[0], ids[1:RELATIONSHIPS + 1]
    bodies = []
    for i, other in enumerate(others):
        ends = (hub, other) if i % 2 == 0 else (other, hub)
        bodies.append({"from_entity_id": ends[0], "to_entity_id": ends[1],
                       "type": REL_TYPES[i % len(REL_TYPES)]})
    # background: relationships among other entities, so the indexes hold more than one
    background = [{"from_entity_id": a, "to_entity_id": b, "type": rng.choice(REL_TYPES)}
                  for a, b in zip(ids[RELATIONSHIPS + 1::2], ids[RELATIONSHIPS + 2::2],
                                  strict=False)][:RELATIONSHIPS * 2]
    progress(f"creating {len(bodies)} relationships of one entity and {len(background)} others")
    t = time.perf_counter()
    for body in bodies + background:
        response = client.post("/v1/relationships", content=msgspec.json.encode(body))
        if response.status_code != 201:
            raise BenchError(f"POST /v1/relationships -> {response.status_code}: "
                             f"{response.text[:500]}")
    wall = time.perf_counter() - t
    out["created"] = {"relationships": len(bodies) + len(background),
                      "seconds": round(wall, 2),
                      "req_per_s": round((len(bodies) + len(background)) / wall, 1),
                      "note": "POST /v1/relationships, one client, sequential; no target"}
    # walk every page: all 1,000 are listed once
    seen: set[str] = set()
    cursor, pages = None, 0
    while True:
        q = {"entity_id": hub, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = get_json(client, "/v1/relationships?" + urlencode(q))
        seen.update(i["relationship_id"] for i in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor or pages > 10:
            break
    bench.check(f"relationships of the hub entity: {len(seen)} listed (want "
                f"{RELATIONSHIPS})", len(seen) == RELATIONSHIPS)
    first = get_json(client, "/v1/relationships?" + urlencode({"entity_id": hub, "limit": 50}))
    deep = first
    for _ in range(10):
        deep = get_json(client, "/v1/relationships?" + urlencode(
            {"entity_id": hub, "limit": 50, "cursor": deep["next_cursor"]}))
    # name, query, target p50 ms (None: reported), items expected
    cases: list[tuple[str, dict[str, Any], float | None, int]] = [
        ("list_limit_50", {"entity_id": hub}, 10.0, 50),
        ("list_limit_500", {"entity_id": hub, "limit": 500}, None, 500),
        ("list_limit_50_names_false", {"entity_id": hub, "names": "false"}, None, 50),
        ("list_limit_500_names_false", {"entity_id": hub, "limit": 500, "names": "false"},
         None, 500),
        ("list_limit_50_page_11", {"entity_id": hub, "cursor": deep["next_cursor"]}, None,
         50),
        ("list_limit_50_by_type", {"entity_id": hub, "type": "friend_of"}, None, 50),
    ]
    scenarios: dict[str, Any] = {}
    for name, params, target, want in cases:
        url = "/v1/relationships?" + urlencode(params)
        page = get_json(client, url)
        ok = len(page["items"]) == want and all(
            i["other_display_name"] is not None for i in page["items"]
            if params.get("names") != "false")
        bench.check(f"relationships {name}: {len(page['items'])} items (want {want})", ok)
        get = [("GET", url, None)]
        r = bench.timed(f"relationships {name}: GET {url[:90]}", client, server,
                        get * requests, get * 5, max_seconds=15.0, retries=1)
        r["items"] = len(page["items"])
        scenarios[name] = r
        if target is not None:
            bench.target(f"relationships of an entity with {RELATIONSHIPS}: {name}", r,
                         "p50_ms", "<=", target)
        else:
            r["note"] = "informational; no target"
    # beside them, in the same run: one entity read and the kernel's ping
    for name, url in (("baseline_get_entity", f"/v1/entities/{hub}"),
                      ("baseline_ping", "/v1/ping")):
        get = [("GET", url, None)]
        scenarios[name] = bench.timed(f"{name}: GET {url[:60]}", client, server,
                                      get * requests, get * 5, retries=1)
        scenarios[name]["note"] = "baseline measured in the same run; no target"
    out["scenarios"] = scenarios
    return out


def _define_fields(client: httpx.Client) -> None:
    for key, ftype, label in seeding.FIELD_DEFS:
        response = client.post("/v1/admin/field-defs", content=msgspec.json.encode(
            {"field_key": key, "field_type": ftype, "label": label}))
        if response.status_code != 201:
            raise BenchError(f"defining {key}: {response.status_code} {response.text[:300]}")


def bench_metadata(root: Path, bench: Bench, progress: Callable[[str], None],
                   quick: bool) -> None:
    base = 20_000 if quick else 100_000
    rounds = 1 if quick else 3
    requests = 50 if quick else 200
    out: dict[str, Any] = {"library_entities": base}
    home = root / "metadata"
    cli(home, "migrate")
    token = cli(home, "token")
    db = home / "db" / DB_FILENAME
    # the fields are defined through the API; the seeder then indexes with those definitions
    with Server(home) as server, client_for("", token) as client:
        server.start()
        client.base_url = server.base_url
        _define_fields(client)
    progress(f"metadata: seeding a library of {base:,} entities")
    res = seeding.seed(db, base, seed=21)
    out["seed"] = res.as_dict()
    bench.check("metadata: the seeder used the fields defined through the API",
                res.defined_fields == [], res.defined_fields)
    progress(f"metadata: SQLite floor for {BULK_ITEMS} entities (seeder, same library size)")
    out["sqlite_floor"] = _sqlite_floor(root, base, seed=21)

    with BareServer(home / "bare") as bare_server, client_for("", token) as bare_client, \
            Server(home) as server, client_for("", token) as client:
        bare_server.start()
        bare_client.base_url = bare_server.base_url
        server.start()
        client.base_url = server.base_url
        created = []
        for probe in [*_fidelity_bodies(), *FIDELITY_PROBES]:
            created.append(client.post("/v1/entities", content=msgspec.json.encode(probe)
                                       ).raise_for_status().json()["entity_id"])
        progress(f"bulk upsert of {BULK_ITEMS} items x {rounds} round(s) "
                 f"into {base:,} entities")
        bulk = bulk_rounds(client, server, bench, progress, rounds, seed=300,
                           bare=bare_client)
        bulk["method"] = (
            "one POST /v1/entities/bulk-upsert (mode merge) per measurement, timed from "
            "sending to the parsed answer, one keep-alive client; each round: a batch of new "
            "items (every one with a stash external id, a quarter also tpdb; fields incl. the "
            "defined born and height), the same body again (matched by external id: all "
            "unchanged), then with every 10th item's tags changed. Medians over rounds; "
            "sqlite_floor and bare_upload are floors measured in the same run")
        out["bulk_upsert"] = bulk
        bench.target(f"bulk upsert of {BULK_ITEMS} new entities, seconds", bulk,
                     "new_median_s", "<=", BULK_NEW_S)
        bench.target(f"bulk upsert of the same {BULK_ITEMS} again (unchanged), seconds",
                     bulk, "unchanged_median_s", "<=", BULK_UNCHANGED_S)
        out["bulk_upsert"]["floor_sqlite_s"] = out["sqlite_floor"]["seconds"]

        ids = [r[0] for r in sqlite3.connect(db).execute(
            "SELECT entity_id FROM entities WHERE deleted_at IS NULL ORDER BY seq DESC"
            " LIMIT ?", (RELATIONSHIPS * 5 + 1,))]
        out["relationships"] = _relationships(client, server, bench, progress, ids,
                                              requests)
        out["rss_after_mib"] = round((server.rss() or 0) / 2**20, 1)

    problems = seeding.check_fidelity(db, created)
    bench.check("seeder writes the rows EntityStore.create writes (fields defined through "
                "the API, external ids, name keys)", not problems, problems[:3])
    bench.doc["metadata"] = out


def _fidelity_bodies() -> list[dict[str, Any]]:
    keys = ("display_name", "aliases", "tags", "fields", "external_ids")
    return [{k: e[k] for k in keys} for e in seeding.generate(5, seed=77)]
