-- The on-call load a rotation considers too much in one handoff window: interruptions at
-- night (22:00–07:00 in the person's zone) and pages in all. The handoff flags whoever crosses one.
ALTER TABLE rotations
    ADD COLUMN night_page_limit integer NOT NULL DEFAULT 2 CHECK (night_page_limit BETWEEN 0 AND 10000),
    ADD COLUMN page_limit integer NOT NULL DEFAULT 20 CHECK (page_limit BETWEEN 0 AND 100000);
