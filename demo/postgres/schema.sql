-- auth-service's users (run by db-init as the superuser, in database secureconnect; idempotent)
SET client_min_messages = warning;
\set auth_pw `cat "$APP_DB_PASSWORD_FILE"`
CREATE TABLE IF NOT EXISTS public.app_users (
    username      text PRIMARY KEY CHECK (length(username) BETWEEN 1 AND 64),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
SELECT 'CREATE ROLE auth_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auth_app')\gexec
-- least privilege: may log in, read and add users; nothing else (no update, delete, DDL, other databases)
ALTER ROLE auth_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'auth_pw';
REVOKE ALL ON DATABASE secureconnect FROM PUBLIC;
GRANT CONNECT ON DATABASE secureconnect TO auth_app;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO auth_app;
REVOKE ALL ON public.app_users FROM auth_app;
GRANT SELECT, INSERT ON public.app_users TO auth_app;
