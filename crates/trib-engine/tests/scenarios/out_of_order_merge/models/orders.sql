SELECT order_id, status, amount, updated_at FROM shop.orders_raw
