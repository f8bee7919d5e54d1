SELECT reading_id, device, at, celsius FROM iot.readings_raw
