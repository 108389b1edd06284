{{ config(
    lf_tags_config={
        'enabled': true,
        'tags': {'domain': var('lf_tag_domain'), 'classification': 'confidential'},
        'tags_columns': {'classification': {'pii': ['address', 'email', 'dob', 'phone']}},
    }
) }}

select
    cust_id,
    fname,
    lname,
    gender,
    address,
    email,
    cast({{ lakegov_try_parse_date('dob', '%Y/%m/%d') }} as date) as dob,
    phone,
    partition_dt
from {{ ref('mwaa_blog_customers_dq') }}
where tests_failed is null
