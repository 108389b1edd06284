{#-
  Metadata-driven data-quality checks.

  The checks are declared on the staging source's columns (models/sources.yml,
  `meta.dq_checks`). `dq_checked_rows` turns them into one query that returns every staged
  row, its columns as trimmed text, and `tests_failed`: the names of the failed checks in
  declaration order, separated by `|`, or null when the row passed them all. The clean
  model keeps the rows where it is null, the exception model the others, so a row is in
  exactly one of the two.
-#}

{#- The checks declared on a source table, normalised to dicts with `column`, `check`, `name`. -#}
{% macro get_dq_checks(source_name, table_name) %}
  {%- set unique_id = 'source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name -%}
  {%- set node = graph.sources.get(unique_id) -%}
  {%- if node is none -%}
    {{ exceptions.raise_compiler_error('dq: unknown source ' ~ source_name ~ '.' ~ table_name) }}
  {%- endif -%}
  {%- set checks = [] -%}
  {%- for column_name, column in node.columns.items() -%}
    {%- set meta = column.get('meta') or (column.get('config') or {}).get('meta') or {} -%}
    {%- for spec in meta.get('dq_checks', []) -%}
      {%- set spec = {'check': spec} if spec is string else spec -%}
      {%- set kind = spec.get('check') -%}
      {%- if kind in ['not_null', 'unique'] -%}
        {%- set default_name = kind ~ '_' ~ column_name -%}
      {%- elif kind in ['regex', 'date'] -%}
        {%- set default_name = column_name ~ '_format' -%}
      {%- elif kind == 'relationship' -%}
        {%- set default_name = 'referential_' ~ column_name -%}
      {%- else -%}
        {{ exceptions.raise_compiler_error('dq: unknown check "' ~ kind ~ '" on ' ~ table_name ~ '.' ~ column_name) }}
      {%- endif -%}
      {%- set check = dict(spec) -%}
      {%- do check.update({'column': column_name, 'check': kind, 'name': spec.get('name', default_name)}) -%}
      {%- do checks.append(check) -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return(checks) }}
{% endmacro %}

{#- The SQL condition under which one check fails, on the staged (text) columns. -#}
{% macro dq_check_fails(check, parent_alias=none) %}
  {%- set col = 'staged.' ~ adapter.quote(check.column) -%}
  {%- if check.check == 'not_null' -%}
    {{ col }} is null
  {%- elif check.check == 'unique' -%}
    {{ col }} is not null and count(*) over (partition by {{ col }}) > 1
  {%- elif check.check == 'regex' -%}
    {{ col }} is not null and not {{ lakegov_regex_matches(col, check.pattern) }}
  {%- elif check.check == 'date' -%}
    {{ col }} is not null and {{ lakegov_try_parse_date(col, check.format) }} is null
  {%- elif check.check == 'relationship' -%}
    {{ dq_referential_check(col, parent_alias) }}
  {%- endif -%}
{% endmacro %}

{#- Every staged row of a source table with its `tests_failed`. -#}
{% macro dq_checked_rows(source_name, table_name) %}
  {%- set relation = source(source_name, table_name) -%}
  {%- if not execute -%}
    {#- parse time: the graph is not loaded yet; the source() call above records the dependency -#}
    select 1 as parse_placeholder
  {%- else -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] -%}
    {%- if not node.columns -%}
      {{ exceptions.raise_compiler_error('dq: source ' ~ source_name ~ '.' ~ table_name ~ ' declares no columns') }}
    {%- endif -%}
    {%- set checks = get_dq_checks(source_name, table_name) -%}
    {#- each relationship check joins its parent under its own alias -#}
    {%- set aliases = {} -%}
    {%- for check in checks -%}
      {%- if check.check == 'relationship' -%}
        {%- do aliases.update({loop.index: 'parent_' ~ loop.index}) -%}
      {%- endif -%}
    {%- endfor -%}
with staged as (
    select
    {%- for column_name in node.columns %}
        {{ lakegov_clean_text(column_name) }} as {{ adapter.quote(column_name) }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ relation }}
),

checked as (
    select
        staged.*,
        {%- if checks %}
        nullif(concat_ws('|'
        {%- for check in checks %}
            , case when {{ dq_check_fails(check, aliases.get(loop.index)) }} then '{{ check.name }}' end
        {%- endfor %}
        ), '') as tests_failed
        {%- else %}
        cast(null as varchar) as tests_failed
        {%- endif %}
    from staged
    {%- for check in checks %}
      {%- if check.check == 'relationship' %}
    {{ dq_referential_join(check, aliases[loop.index]) }}
      {%- endif %}
    {%- endfor %}
)

select * from checked
  {%- endif -%}
{% endmacro %}
