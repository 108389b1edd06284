{{ config(
    lf_tags_config={
        'enabled': true,
        'tags': {'domain': var('lf_tag_domain'), 'classification': 'confidential'},
        'tags_columns': {'classification': {'pci': ['cc_number', 'cc_expiry_date']}},
    }
) }}

select
    cust_id,
    cc_number,
    cc_expiry_date,
    partition_dt
from {{ ref('mwaa_blog_cards_dq') }}
where tests_failed is null
