SELECT
    device_id,
    site,
    date_trunc('minute', reading_at) AS minute,
    count(*) AS readings,
    avg(temperature_c) AS temperature_avg,
    min(temperature_c) AS temperature_min,
    max(temperature_c) AS temperature_max,
    avg(humidity_pct) AS humidity_avg
FROM iot.sensor_readings
GROUP BY device_id, site, date_trunc('minute', reading_at)
