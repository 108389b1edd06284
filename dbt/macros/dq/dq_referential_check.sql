{#-
  Referential check: a child row fails when its key is not among the parent model's clean
  rows. The parent is a dbt model, so the child's model must declare the dependency
  (`-- depends_on: {{ ref('<parent>') }}`): dbt then builds the parent first and the check
  sees its current rows.
-#}

{% macro dq_referential_join(check, alias) -%}
    left join (
        select distinct cast({{ adapter.quote(check.field) }} as varchar) as parent_key
        from {{ ref(check.to) }}
    ) {{ alias }}
        on staged.{{ adapter.quote(check.column) }} = {{ alias }}.parent_key
{%- endmacro %}

{% macro dq_referential_check(column_expr, alias) -%}
    {{ column_expr }} is not null and {{ alias }}.parent_key is null
{%- endmacro %}
