{#- Staged customers with the checks declared in sources.yml; feeds the clean and exception models. -#}
{{ dq_checked_rows('formatted_stg', 'mwaa_blog_customers') }}
