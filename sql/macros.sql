-- Macros the models call: DuckDB scalar macros, created in schema analytics by the model runner at every build,
-- before the models (and in the same transaction). Each statement is `create or replace macro name(args) as expr`.
-- On PostgreSQL the transpiler expands each call into its body instead (see sql/README.md, "Macros").

-- The API's text as a value: its literal "NULL" / "null", empty and blank strings become NULL (other text is kept
-- as it is, spaces included). Used by every staging model for every text column.
create or replace macro null_if_blank(value) as
    case when trim(value) in ('', 'NULL', 'null') then null else value end;
