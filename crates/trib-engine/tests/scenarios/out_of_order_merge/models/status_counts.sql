SELECT status, count(*) AS orders, sum(amount) AS amount FROM shop.orders GROUP BY status
