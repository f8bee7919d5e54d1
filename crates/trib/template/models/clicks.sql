SELECT
    event_id,
    session_id,
    user_id,
    lower(event_type) AS event_type,
    url,
    properties['product_id'] AS product_id,
    occurred_at
FROM web.clicks_raw
