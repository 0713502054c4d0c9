"""The jobs plugin's migrations: the queue and the append-only job logs."""

from __future__ import annotations

from ff_plugin_sdk import Migration

MIGRATIONS = [
    Migration(
        version=1,
        name="jobs and job logs",
        sql="""
        -- seq: creation order (the list's order and the queue's tie-break)
        CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            priority INTEGER NOT NULL DEFAULT 0,
            input TEXT NOT NULL DEFAULT '{}',
            input_asset_id TEXT,
            -- {"percent", "step", "counters": {...}}
            progress TEXT NOT NULL DEFAULT '{}',
            result TEXT,
            output_asset_ids TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            correlation_id TEXT,
            -- who holds a running job: 'core' (in process) or an out-of-process runner
            runner_id TEXT,
            lease_expires_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        -- the queue: highest priority first, then oldest
        CREATE INDEX jobs_queue ON jobs(type, priority DESC, seq) WHERE status = 'queued';
        CREATE INDEX jobs_status ON jobs(status, seq);
        CREATE INDEX jobs_type ON jobs(type, seq);
        -- what changed since a watcher last looked (the live Jobs page)
        CREATE INDEX jobs_updated ON jobs(updated_at);
        CREATE INDEX jobs_leases ON jobs(lease_expires_at) WHERE status = 'running';
        CREATE TABLE job_logs (
            id INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX job_logs_job ON job_logs(job_id, id);
        """,
    ),
]
