{#-
  Where a model's data lives in the lake: <s3_data_dir><table>/. On Athena dbt-athena
  derives the same place from the `s3_data_dir` config (plus a unique suffix for Iceberg);
  the local target writes one Parquet file there.
-#}
{% macro lakegov_lake_location(relation) -%}
  {%- set data_dir = config.get('s3_data_dir') -%}
  {%- if not data_dir -%}
    {{ exceptions.raise_compiler_error('lake_table: model ' ~ relation.identifier ~ ' has no s3_data_dir config') }}
  {%- endif -%}
  {{ data_dir.rstrip('/') ~ '/' ~ relation.identifier ~ '/' }}
{%- endmacro %}
