{#-
  lake_table (DuckDB only): the model is built as a table in the local DuckDB database and
  exported as one Parquet file under its lake location on S3, where lakegov's catalog step
  registers it. The exported row count is reported as the model's rows_affected.

  Unlike dbt-duckdb's `external` materialization, an empty result is written as an empty
  Parquet file with the full schema (no placeholder row of nulls), and downstream models
  read the local table rather than the S3 copy.
-#}
{% materialization lake_table, adapter='duckdb' %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set location = lakegov_lake_location(target_relation) ~ 'data.parquet' -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- if existing_relation is not none %}
    {{ adapter.drop_relation(existing_relation) }}
  {%- endif %}

  {% call statement('build') -%}
    {{ create_table_as(False, target_relation, sql) }}
  {%- endcall %}

  {% call statement('export') -%}
    copy (select * from {{ target_relation }}) to '{{ location }}' (format parquet, compression zstd)
  {%- endcall %}

  {%- set counted = run_query('select count(*) from ' ~ target_relation) -%}
  {%- set row_count = counted.columns[0].values()[0] | int -%}
  {% do store_raw_result('main', message='OK', code='COPY', rows_affected=row_count) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
