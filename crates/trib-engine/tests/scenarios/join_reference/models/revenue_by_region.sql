SELECT region, count(*) AS orders, sum(amount) AS revenue FROM shop.orders_enriched GROUP BY region
