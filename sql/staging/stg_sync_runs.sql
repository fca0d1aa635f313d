-- stg_sync_runs: the sync's own run history (table illuminate.sync_runs, written by `illuminate-sync run` after every
-- run that held the warehouse's lock, whether it succeeded or failed).
-- Grain: one row per run. Key: (run_id).
-- seconds: from taking the lock to the end of the load (the models are built after). rows_written / rows_removed:
-- summed over the raw tables. findings: what reconciliation found, and the shrink guard's refusal of a failed run.
select
    run_id,
    cast(started_at as timestamp) as started_at,
    cast(finished_at as timestamp) as finished_at,
    cast(seconds as double) as seconds,
    status,
    error,
    cast(requests as bigint) as requests,
    cast(retries as bigint) as retries,
    cast(rows_written as bigint) as rows_written,
    cast(rows_removed as bigint) as rows_removed,
    cast(quarantined as bigint) as quarantined,
    findings
from illuminate.sync_runs
