{#-
  A model's custom schema is the database name itself (formatted, formatted_exception, as
  the environment names them), not dbt's default "<target schema>_<custom schema>".
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
