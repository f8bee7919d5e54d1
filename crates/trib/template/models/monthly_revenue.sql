SELECT
    date_trunc('month', day) AS month,
    country,
    sum(orders) AS orders,
    sum(revenue) AS revenue
FROM orders.daily_revenue
GROUP BY date_trunc('month', day), country
