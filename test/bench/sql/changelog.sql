-- The writes of a task creation (the task and its activity row) for one of
-- 100 users, as pgbench runs them: the change log's cost on a writer.
--   createdb pb && DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb?sslmode=disable bin/perpetua migrate
--   pgbench -h 127.0.0.1 -U postgres -n -c 16 -j 2 -T 5 -f test/bench/sql/changelog.sql pb
-- then the same with every user listened to, and without the log:
--   INSERT INTO live_listeners SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid,
--     gen_random_uuid(), now() + interval '1 hour' FROM generate_series(1, 100) n;
--   ALTER TABLE tasks DISABLE TRIGGER tasks_change;
\set n random(1, 100)
BEGIN;
INSERT INTO tasks (id, user_id, title, description, priority, focus_time_seconds, completed, hidden, archived, subtask_count, subtask_completed_count, version, created_at, updated_at)
  VALUES (gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid, 'bench write', '', 'medium', 0, false, false, false, 0, 0, 1, now(), now());
INSERT INTO activity_log (id, user_id, entity_type, entity_id, action, source, extra_data, created_at)
  VALUES (gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad(:n::text, 12, '0'))::uuid, 'task', gen_random_uuid(), 'created', 'user', '{}', now());
COMMIT;
