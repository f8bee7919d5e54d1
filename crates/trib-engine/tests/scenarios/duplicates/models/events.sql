SELECT event_id, page, ts, sent_at, agent FROM web.events_raw
