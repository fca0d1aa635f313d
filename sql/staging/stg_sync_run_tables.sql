-- stg_sync_run_tables: per run, what each raw table held after it (table illuminate.sync_run_tables, written by
-- the sync with its run history).
-- Grain: one row per run and raw table. Key: (run_id, table_name).
-- synced: the run fetched the table (`--resources` selects; child tables follow their table). endpoint, strategy:
-- from the endpoint catalog (null for tables outside it, e.g. the quarantine).
select
    run_id,
    table_name,
    endpoint,
    strategy,
    synced,
    cast(rows as bigint) as rows,
    cast(rows_written as bigint) as rows_written,
    cast(rows_removed as bigint) as rows_removed
from illuminate.sync_run_tables
