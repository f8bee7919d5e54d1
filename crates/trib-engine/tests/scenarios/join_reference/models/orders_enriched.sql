SELECT o.order_id, o.country, c.region, o.amount, o.ordered_at
FROM shop.orders_raw o
LEFT JOIN ref.countries c ON o.country = c.code
