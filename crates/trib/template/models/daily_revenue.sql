SELECT
    date_trunc('day', ordered_at) AS day,
    country,
    count(*) AS orders,
    sum(amount) AS revenue
FROM orders.orders
WHERE status <> 'cancelled'
GROUP BY date_trunc('day', ordered_at), country
