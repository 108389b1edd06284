{#-
  Staged cards with their checks, including the referential check against the clean
  customers: a card whose customer is missing there (unknown, or itself rejected) fails.
-#}
-- depends_on: {{ ref('mwaa_blog_customers') }}
{{ dq_checked_rows('formatted_stg', 'mwaa_blog_cards') }}
