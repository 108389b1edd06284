{#-
  The few expressions whose spelling differs between DuckDB and Athena (Trino). Everything
  else in the project is plain SQL that both engines accept.
-#}

{#- True when `expr` matches the regular expression `pattern` (unanchored search). -#}
{% macro lakegov_regex_matches(expr, pattern) -%}
  {{ return(adapter.dispatch('lakegov_regex_matches', 'lakegov_example')(expr, pattern)) }}
{%- endmacro %}

{% macro default__lakegov_regex_matches(expr, pattern) -%}
  regexp_like({{ expr }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{% macro duckdb__lakegov_regex_matches(expr, pattern) -%}
  regexp_matches({{ expr }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{#- A timestamp parsed from text with a strptime-style format, or null when it does not parse. -#}
{% macro lakegov_try_parse_date(expr, fmt) -%}
  {{ return(adapter.dispatch('lakegov_try_parse_date', 'lakegov_example')(expr, fmt)) }}
{%- endmacro %}

{% macro default__lakegov_try_parse_date(expr, fmt) -%}
  try(date_parse({{ expr }}, '{{ fmt | replace("'", "''") }}'))
{%- endmacro %}

{% macro duckdb__lakegov_try_parse_date(expr, fmt) -%}
  try_strptime({{ expr }}, '{{ fmt | replace("'", "''") }}')
{%- endmacro %}

{#- The raw value as trimmed text, empty text as null: what the checks look at. -#}
{% macro lakegov_clean_text(column_name) -%}
  nullif(trim(cast({{ adapter.quote(column_name) }} as varchar)), '')
{%- endmacro %}
