SELECT
    date_trunc('hour', occurred_at) AS hour,
    url,
    count(*) AS page_views,
    count(DISTINCT session_id) AS sessions
FROM web.clicks
WHERE event_type = 'page_view'
GROUP BY date_trunc('hour', occurred_at), url
