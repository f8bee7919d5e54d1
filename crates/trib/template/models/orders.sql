-- Latest state per order: the engine merges by `key` and keeps the row with the
-- highest `sequence_by` (updated_at), whatever order events arrive in.
SELECT
    order_id,
    customer_id,
    customer_email,
    upper(country) AS country,
    lower(status) AS status,
    amount,
    upper(currency) AS currency,
    ordered_at,
    updated_at
FROM orders.orders_raw
