SELECT device, tumble(at, INTERVAL '5 minutes') AS window_start, count(*) AS readings, max(celsius) AS celsius_max
FROM iot.readings
GROUP BY device, tumble(at, INTERVAL '5 minutes')
