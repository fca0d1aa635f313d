-- rpt_sync_tables: each raw table's rows and freshness, for the sync health page.
-- Grain: one row per raw table the history knows. Key: (table_name).
-- rows: after the latest successful run. last_loaded_at: the end of the latest successful run that fetched the
-- table. days_since_load: the real date (current_date, not analytics.settings.today, which replays a night) minus
-- that date; null if no successful run fetched the table.
with succeeded as (
    select run_id, finished_at from analytics.stg_sync_runs where status = 'succeeded'
),

table_runs as (
    select
        tables.table_name,
        tables.endpoint,
        tables.strategy,
        tables.synced,
        tables.rows,
        succeeded.finished_at,
        row_number() over (partition by tables.table_name order by succeeded.finished_at desc) as recency
    from analytics.stg_sync_run_tables as tables
    inner join succeeded on succeeded.run_id = tables.run_id
),

latest as (
    select table_name, endpoint, strategy, rows from table_runs where recency = 1
),

loaded as (
    select table_name, max(finished_at) as last_loaded_at from table_runs where synced group by table_name
)

select
    latest.table_name,
    latest.endpoint,
    latest.strategy,
    latest.rows,
    loaded.last_loaded_at,
    cast(current_date - cast(loaded.last_loaded_at as date) as bigint) as days_since_load
from latest
left join loaded on loaded.table_name = latest.table_name
