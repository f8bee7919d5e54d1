SELECT page, date_trunc('minute', ts) AS minute, count(*) AS views FROM web.events GROUP BY page, date_trunc('minute', ts)
