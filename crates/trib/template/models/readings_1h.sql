-- Hourly roll-up: weighted by the number of readings in each minute.
SELECT
    device_id,
    site,
    date_trunc('hour', minute) AS hour,
    sum(readings) AS readings,
    sum(temperature_avg * readings) / sum(readings) AS temperature_avg,
    min(temperature_min) AS temperature_min,
    max(temperature_max) AS temperature_max
FROM iot.readings_1m
GROUP BY device_id, site, date_trunc('hour', minute)
