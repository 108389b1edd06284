{{ config(
    lf_tags_config={
        'enabled': true,
        'tags': {'domain': var('lf_tag_domain'), 'classification': 'restricted'},
    }
) }}

select *
from {{ ref('mwaa_blog_customers_dq') }}
where tests_failed is not null
