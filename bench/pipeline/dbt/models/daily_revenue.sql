-- Gold: revenue and order count per day and country, cancelled orders excluded
-- (orders.daily_revenue, the same SQL as the example project's model). Incremental by
-- day: the days of the silver rows changed since the last run are recomputed from the
-- whole of silver and replace the stored ones. An order's day never changes, so the
-- days of its new state are those of its old one.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='day'
) }}

select
    date_trunc('day', ordered_at) as day,
    country,
    count(*) as orders,
    sum(amount) as revenue,
    -- The silver batch this run has read up to: where the next run starts.
    (select max(_batch) from {{ ref('orders') }}) as _batch
from {{ ref('orders') }}
where status <> 'cancelled'
{% if is_incremental() %}
    and date_trunc('day', ordered_at) in (
        select distinct date_trunc('day', ordered_at)
        from {{ ref('orders') }}
        where _batch > (select coalesce(max(_batch), -1) from {{ this }})
    )
{% endif %}
group by date_trunc('day', ordered_at), country
