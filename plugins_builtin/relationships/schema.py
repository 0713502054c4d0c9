"""The relationships plugin's migrations, and the relation types it starts with."""

from __future__ import annotations

from ff_plugin_sdk import Migration

#: (name, inverse) pairs: each name is a type of its own whose inverse is the other
INVERSE_PAIRS = [
    ("parent_of", "child_of"),
    ("grandparent_of", "grandchild_of"),
    ("guardian_of", "ward_of"),
    ("mentor_of", "student_of"),
    ("employer_of", "employee_of"),
    ("leader_of", "led_by"),
    ("member_of", "has_member"),
    ("owner_of", "owned_by"),
    ("creator_of", "created_by"),
    ("portrays", "portrayed_by"),
    ("based_on", "basis_of"),
]
#: types that read the same both ways: A sibling_of B is B sibling_of A
SYMMETRIC = [
    "sibling_of", "cousin_of", "spouse_of", "former_spouse_of", "partner_of", "friend_of",
    "acquaintance_of", "colleague_of", "ally_of", "rival_of", "enemy_of",
    # the same individual under another identity (a pen name, a secret identity)
    "alias_of",
]


def _seed_sql() -> str:
    rows = [f"('{a}', '{b}', 0)" for a, b in INVERSE_PAIRS]
    rows += [f"('{b}', '{a}', 0)" for a, b in INVERSE_PAIRS]
    rows += [f"('{name}', '{name}', 1)" for name in SYMMETRIC]
    return ("INSERT INTO relation_types (name, inverse, symmetric, created_at) SELECT"
            " column1, column2, column3, strftime('%Y-%m-%dT%H:%M:%SZ', 'now') FROM (VALUES "
            + ", ".join(rows) + ");")


MIGRATIONS = [
    Migration(
        version=1,
        name="relationships, the relation type registry and the deleted-entity list",
        sql="""
        -- inverse: the name the relationship has read from its other end (itself for a
        -- symmetric type, NULL when none was given).  Every inverse is a type of its own.
        -- uses: visible live relationships of this type (the suggestions' ranking)
        CREATE TABLE relation_types (
            name TEXT PRIMARY KEY,
            inverse TEXT,
            symmetric INTEGER NOT NULL DEFAULT 0,
            uses INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;
        -- seq: creation order (the list's keyset).  hidden: how many of the two ends are
        -- deleted entities (0: shown).  same_*: what makes two relationships the same fact,
        -- whichever way round they were written (symmetric types, a type and its inverse)
        CREATE TABLE relationships (
            seq INTEGER PRIMARY KEY,
            relationship_id TEXT NOT NULL UNIQUE,
            from_entity_id TEXT NOT NULL,
            to_entity_id TEXT NOT NULL,
            type TEXT NOT NULL REFERENCES relation_types(name),
            fields TEXT NOT NULL DEFAULT '{}',
            valid_from TEXT,
            valid_to TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT,
            hidden INTEGER NOT NULL DEFAULT 0,
            same_type TEXT NOT NULL,
            same_a TEXT NOT NULL,
            same_b TEXT NOT NULL
        );
        CREATE UNIQUE INDEX relationships_once ON relationships(same_type, same_a, same_b)
            WHERE deleted_at IS NULL;
        -- an entity's relationships, each direction in creation order
        CREATE INDEX relationships_from ON relationships(from_entity_id, seq)
            WHERE deleted_at IS NULL;
        CREATE INDEX relationships_to ON relationships(to_entity_id, seq)
            WHERE deleted_at IS NULL;
        -- entities deleted while this plugin ran (kept by the entities store's delete
        -- listener): a relationship written in a race with a delete is refused here
        CREATE TABLE relationships_deleted_entities (
            entity_id TEXT PRIMARY KEY
        ) WITHOUT ROWID;
        """ + _seed_sql(),
    ),
]
