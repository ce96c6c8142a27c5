-- Each person's time zone for pages (an IANA name; NULL: the browser's, else UTC).
ALTER TABLE users ADD COLUMN time_zone text CHECK (time_zone IS NULL OR length(time_zone) BETWEEN 1 AND 64);
