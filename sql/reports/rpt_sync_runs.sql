-- rpt_sync_runs: the sync's runs, newest first by run_number (1 = the latest), for the sync health page.
-- Grain: one row per run. Key: (run_id).
select
    row_number() over (order by started_at desc, run_id) as run_number,
    run_id,
    started_at,
    finished_at,
    seconds,
    status,
    error,
    requests,
    retries,
    rows_written,
    rows_removed,
    quarantined,
    findings
from analytics.stg_sync_runs
